"""The store the dashboard queries run against: the embedded ClickHouse with a city's rows.

It is not the default store: another database than `vtops` and a city in another time zone
than Vũng Tàu's, so a panel or alert that still names `vtops.` or Vietnamese days fails (the
committed JSON, built for the defaults, is checked as text by test_json.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
from clickhouse_connect.driver.client import Client

from city.profile import CityProfile, load_city_profile
from dashboards.build import build_dashboards
from dashboards.dimensions import load_dimensions
from dashboards.provisioning import AlertRule, alert_rules
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.settings import StorageSettings
from tests.dashboards.city_rows import Expected, insert_city, utc_minute

DATABASE: Final = "city_ops"
# Vũng Tàu's wards and cameras on Lisbon's clock: days and hours that are not Vietnam's, with
# summer time.
OTHER_ZONE: Final = "Europe/Lisbon"


def other_city() -> CityProfile:
    return load_city_profile().model_copy(update={"timezone": OTHER_ZONE})


@dataclass(frozen=True)
class Store:
    client: Client
    database: str
    profile: CityProfile
    expected: Expected

    @property
    def boards(self) -> dict[str, dict[str, Any]]:
        """The dashboards as built for this store's database and city."""
        return _built(self.database, self.profile)

    @property
    def alert_rules(self) -> tuple[AlertRule, ...]:
        return alert_rules(self.database, self.profile.timezone)


_BUILT: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}


def _built(database: str, profile: CityProfile) -> dict[str, dict[str, Any]]:
    key = (database, profile.timezone)  # the stores here differ in nothing else
    if key not in _BUILT:
        _BUILT[key] = build_dashboards(profile, database)
    return _BUILT[key]


# Per module, not per package: chDB runs one embedded engine per process, so a store held open
# across modules would keep test_pipeline_output.py from opening the real run's store.
@pytest.fixture(scope="module")
def populated_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Migrated store, dimension tables and three hours of city rows ending now, with a few
    numbers computed independently in `expected`; test_pipeline_output.py runs the same queries
    on what a real run through Kafka and `vtops worker` wrote."""
    profile = other_city()
    storage = StorageSettings(data_dir=tmp_path_factory.mktemp("store"), clickhouse_url=None)
    client = connect(storage)
    try:
        migrate(client, DATABASE, timezone=profile.timezone)
        load_dimensions(client, DATABASE, profile)
        expected = insert_city(client, DATABASE, profile, utc_minute())
        yield Store(client, DATABASE, profile, expected)
    finally:
        client.close()
