"""The store the dashboard queries run against: the embedded ClickHouse with a city's rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from clickhouse_connect.driver.client import Client

from city.profile import CityProfile, load_city_profile
from dashboards.dimensions import load_dimensions
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.settings import StorageSettings
from tests.dashboards.city_rows import Expected, insert_city, utc_minute

DATABASE = "vtops"


@dataclass(frozen=True)
class Store:
    client: Client
    database: str
    profile: CityProfile
    expected: Expected


# Per module, not per package: chDB runs one embedded engine per process, so a store held open
# across modules would keep test_pipeline_output.py from opening the real run's store.
@pytest.fixture(scope="module")
def populated_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Migrated store, dimension tables and three hours of city rows ending now, with a few
    numbers computed independently in `expected`; test_pipeline_output.py runs the same queries
    on what a real run through Kafka and `vtops worker` wrote."""
    profile = load_city_profile()
    storage = StorageSettings(data_dir=tmp_path_factory.mktemp("store"), clickhouse_url=None)
    client = connect(storage)
    try:
        migrate(client, DATABASE)
        load_dimensions(client, DATABASE, profile)
        expected = insert_city(client, DATABASE, profile, utc_minute())
        yield Store(client, DATABASE, profile, expected)
    finally:
        client.close()
