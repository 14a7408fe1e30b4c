"""The article's indicators, computed over rows inserted into the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from city.profile import load_city_profile
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.settings import StorageSettings
from tests.factories_portal import COLUMNS as PORTAL_COUNTS
from vtops.indicators import Indicator, article_indicators

TZ = load_city_profile().tz
DATABASE = "vtops"
HOUR = datetime(2024, 9, 16, 10, tzinfo=TZ)
METHODS = ("cash", "vietqr", "card", "ewallet", "bank_transfer")


def payment_row(
    ward: str, category: str, hour: datetime, terminals: int, counts: dict[str, int], version: int
) -> dict[str, Any]:
    every = {m: counts.get(m, 0) for m in METHODS}
    total = sum(every.values())
    return {
        "ward": ward,
        "category": category,
        "window_start": hour,
        "reports": terminals * 4,
        "terminals": terminals,
        **every,
        "cash_amount_vnd": 0,
        "cashless_amount_vnd": 0,
        "cashless_share": (total - every["cash"]) / total if total else 0.0,
        "final": 0,
        "version": version,
    }


def portal_row(day: date, agency: str, version: int, **counts: int) -> dict[str, Any]:
    return {
        "day": day,
        "agency": agency,
        "procedure_code": "1.001193",
        **{c: counts.get(c, 0) for c in PORTAL_COUNTS},
        "final": 0,
        "version": version,
    }


def insert(client: Client, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    client.insert(
        f"{DATABASE}.{table}", [[row[c] for c in columns] for row in rows], column_names=columns
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = connect(
        StorageSettings(data_dir=Path(tmp_path_factory.mktemp("indicators")), clickhouse_url=None)
    )
    try:
        migrate(client, DATABASE, timezone=TZ.key)
        earlier = HOUR - timedelta(hours=1)
        insert(
            client,
            "payments_cashless_1h",
            [
                # A superseded version that FINAL must hide.
                payment_row("phuong-1", "grocery", HOUR, 9, {"cash": 1000}, version=1),
                payment_row(
                    "phuong-1",
                    "grocery",
                    HOUR,
                    700,
                    {"cash": 50, "vietqr": 40, "card": 10},
                    version=5,
                ),
                payment_row(
                    "phuong-2", "retail", HOUR, 500, {"vietqr": 20, "ewallet": 20}, version=3
                ),
                payment_row("phuong-3", "market", HOUR, 80, {"cash": 20}, version=3),  # no QR
                payment_row("phuong-1", "grocery", earlier, 1100, {"vietqr": 10}, version=2),
                payment_row(
                    "phuong-1", "utility_electricity", HOUR, 4, {"bank_transfer": 100}, version=2
                ),
                payment_row(
                    "phuong-7",
                    "utility_water",
                    HOUR,
                    4,
                    {"cash": 15, "ewallet": 40, "bank_transfer": 45},
                    version=2,
                ),
                payment_row(
                    "phuong-1", "utility_telecom", HOUR, 3, {"cash": 20, "vietqr": 80}, version=2
                ),
            ],
        )
        sep16, sep15 = date(2024, 9, 16), date(2024, 9, 15)
        insert(
            client,
            "portal_kpis_1d",
            [
                portal_row(sep16, "ubnd-phuong-1", 1, submitted=1),  # superseded
                portal_row(
                    sep16,
                    "ubnd-phuong-1",
                    9,
                    submitted=100,
                    submitted_online=98,
                    submitted_full_online=80,
                    submitted_vneid_l2=97,
                    paid_online=40,
                    resolved=50,
                    resolved_signed=50,
                    resolved_on_time=47,
                    resolved_no_due=2,
                    rejected=1,
                ),
                portal_row(
                    sep15,
                    "ubnd-phuong-2",
                    4,
                    submitted=100,
                    submitted_online=96,
                    submitted_full_online=70,
                    submitted_vneid_l2=95,
                    paid_online=20,
                    resolved=52,
                    resolved_signed=51,
                    resolved_on_time=50,
                ),
            ],
        )
        yield client
    finally:
        client.close()


def by_name(indicators: list[Indicator]) -> dict[str, Indicator]:
    return {indicator.name: indicator for indicator in indicators}


def test_indicators_over_everything_stored(store: Client) -> None:
    found = by_name(article_indicators(store, DATABASE, tz=TZ))
    value = {name: indicator.value for name, indicator in found.items()}
    # Payments: 50 + 40 + 10 + 20 + 20 + 20 + 10 + 100 + 15 + 40 + 45 + 20 + 80 = 470.
    assert value["Payments counted at terminals"] == 470
    assert value["Payments made cashless"] == pytest.approx(100 * (470 - 50 - 20 - 15 - 20) / 470)
    assert value["Payments by VietQR"] == pytest.approx(100 * 150 / 470)
    assert value["Payments by card"] == pytest.approx(100 * 10 / 470)
    assert value["Payments by e-wallet"] == pytest.approx(100 * 60 / 470)
    assert value["Payments by bank transfer"] == pytest.approx(100 * 145 / 470)
    assert value["Electricity bills paid cashless"] == 100
    assert value["Water bills paid cashless"] == pytest.approx(85)
    assert value["Telecom and cable TV bills paid cashless"] == pytest.approx(80)
    # The busiest hour of shop terminals in groups that took VietQR: 700 + 500 at 10:00
    # (09:00 has 1,100; the market without VietQR does not count, nor do the billers).
    assert value["Shop terminals taking VietQR (busiest hour)"] == 1200
    assert value["Dossiers submitted"] == 200
    assert value["Dossiers submitted online"] == pytest.approx(97)
    assert value["Dossiers submitted fully online"] == pytest.approx(75)
    assert value["Dossiers resolved on time"] == pytest.approx(100 * 97 / 100)
    assert value["Online dossiers authenticated with VNeID level 2"] == pytest.approx(
        100 * 192 / 194
    )
    assert value["Results digitally signed"] == pytest.approx(100 * 101 / 102)
    assert value["Online dossiers paid online"] == pytest.approx(100 * 60 / 194)


def test_each_indicator_carries_its_unit_and_the_articles_figure(store: Client) -> None:
    found = by_name(article_indicators(store, DATABASE, tz=TZ))
    assert found["Dossiers submitted online"].reported == "97.63%"
    assert found["Dossiers resolved on time"].reported.startswith("99.85%")
    assert found["Water bills paid cashless"].reported == "85%"
    assert found["Shop terminals taking VietQR (busiest hour)"].reported.endswith("(1,200 / 1,200)")
    assert {i.unit for i in found.values()} == {"%", "count"}
    assert found["Dossiers submitted"].unit == "count"


def test_since_limits_the_windows_and_nothing_measured_is_none(store: Client) -> None:
    since = by_name(article_indicators(store, DATABASE, HOUR.astimezone(UTC), tz=TZ))
    assert since["Payments counted at terminals"].value == 460  # without 09:00
    assert since["Shop terminals taking VietQR (busiest hour)"].value == 1200
    assert since["Dossiers submitted"].value == 100  # the local day of 10:00, 09-16
    future = by_name(article_indicators(store, DATABASE, datetime(2030, 1, 1, tzinfo=TZ), tz=TZ))
    assert future["Payments counted at terminals"].value == 0
    assert future["Payments made cashless"].value is None
    assert future["Shop terminals taking VietQR (busiest hour)"].value is None
    assert future["Dossiers resolved on time"].value is None


def test_the_day_of_since_is_the_city_profiles_day(store: Client) -> None:
    # 05:00 on 16 September in Vũng Tàu is 23:00 on the 15th in Lisbon: a city there counts
    # the dossiers of its own 15 September too.
    since = datetime(2024, 9, 16, 5, tzinfo=TZ)
    here = by_name(article_indicators(store, DATABASE, since, tz=TZ))
    assert here["Dossiers submitted"].value == 100
    lisbon = by_name(article_indicators(store, DATABASE, since, tz=ZoneInfo("Europe/Lisbon")))
    assert lisbon["Dossiers submitted"].value == 200


def test_a_since_without_offset_is_refused(store: Client) -> None:
    with pytest.raises(ValueError, match=r"^since:"):
        article_indicators(store, DATABASE, datetime(2024, 9, 16, 10), tz=TZ)


def test_the_database_is_a_parameter_not_sql(store: Client) -> None:
    with pytest.raises(Exception, match=r"(?i)database|exist"):
        article_indicators(store, "vtops.payments_cashless_1h; DROP TABLE x --", tz=TZ)
