"""Every panel's SQL runs on the embedded ClickHouse and returns what its panel draws."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
from clickhouse_connect.driver.query import QueryResult

from dashboards import cashless, pipeline, pipeline_sql, portal, traffic, traffic_sql
from dashboards.macros import Context, TimeRange, expand
from sinks.clickhouse.placeholders import fill
from tests.dashboards.conftest import OTHER_ZONE, Store
from tests.dashboards.queries import (
    JSON,
    column_types,
    panels_with_sql,
    resolve_variables,
    run,
    sql_for,
    time_range,
)

PANELS = list(panels_with_sql())
NUMERIC = ("Int", "UInt", "Float", "Decimal", "Nullable(Int", "Nullable(UInt", "Nullable(Float")


def _id(item: tuple[str, JSON, JSON]) -> str:
    uid, panel, _ = item
    return f"{uid}:{panel['id']}:{panel['title']}"


def _execute(
    store: Store, uid: str, sql: str, chosen: Mapping[str, Sequence[str]] = {}
) -> tuple[QueryResult, TimeRange]:
    board = store.boards[uid]
    time = time_range(board, store.expected.now)
    variables = resolve_variables(board, store, time, chosen)
    return run(store, sql, Context(time, variables)), time


def _check_shape(panel: JSON, target: JSON, result: QueryResult, time: TimeRange) -> None:
    kind, names, types = panel["type"], list(result.column_names), column_types(result)
    rows = result.result_rows
    if target["format"] == 0:
        assert names[0] == "time" and types[0].startswith("DateTime"), (names, types)
        assert rows, "a time series with data in range returned no rows"
        times = [row[0] for row in rows]
        assert times == sorted(times), "time series rows must be sorted by time"
    elif kind == "stat":
        assert len(rows) == 1, f"a stat needs exactly one row, got {len(rows)}"
        assert all(t.startswith(NUMERIC) for t in types), types
        assert any(v is not None for v in rows[0]), "every value of the stat is NULL"
    elif kind == "geomap":
        assert {"latitude", "longitude"} <= set(names)
        lat, lon = names.index("latitude"), names.index("longitude")
        assert rows and all(10.2 < r[lat] < 10.6 and 106.9 < r[lon] < 107.3 for r in rows)
    else:
        assert rows, f"{kind} panel returned no rows although its tables have data"
    assert "plate" not in names and "payload" not in names


@pytest.mark.parametrize("item", PANELS, ids=[_id(p) for p in PANELS])
def test_panel_query_runs_and_has_its_shape(
    populated_store: Store, item: tuple[str, JSON, JSON]
) -> None:
    uid, panel, target = item
    result, time = _execute(populated_store, uid, sql_for(populated_store, uid, panel, target))
    _check_shape(panel, target, result, time)


@pytest.mark.parametrize("uid", [traffic.UID, cashless.UID, portal.UID, pipeline.UID], ids=str)
def test_panels_run_with_a_single_value_selected(populated_store: Store, uid: str) -> None:
    """One ward/agency/topic selected: quoting of a single value, chained camera options."""
    chosen = {
        "ward": ["phuong-1"],
        "agency": ["ubnd-phuong-1"],
        "procedure": ["1.001193"],
        "source": ["camera.events"],
        "category": ["grocery"],
    }
    ran = 0
    for panel in populated_store.boards[uid]["panels"]:
        for target in panel.get("targets", []):
            _execute(populated_store, uid, target["rawSql"], chosen)  # raises on bad SQL
            ran += 1
    assert ran


def _one(store: Store, uid: str, sql: str) -> dict[str, object]:
    result, _ = _execute(store, uid, sql)
    assert len(result.result_rows) == 1
    return dict(zip(result.column_names, result.result_rows[0], strict=True))


def test_live_numbers_read_the_latest_version_of_each_window(populated_store: Store) -> None:
    # Superseded upserts carry ten times the vehicles: only FINAL gives the right number.
    found = _one(populated_store, traffic.UID, traffic_sql.VEHICLES_NOW)
    assert found["vehicles"] == populated_store.expected.vehicles_last_5_min


def test_open_alerts_count_the_current_state_of_each_alert(populated_store: Store) -> None:
    found = _one(populated_store, traffic.UID, traffic_sql.OPEN_ALERTS_COUNT)
    expected = populated_store.expected
    assert found == {"critical": expected.open_critical, "warning": expected.open_warning}


def test_camera_health_finds_silent_and_offline_cameras(populated_store: Store) -> None:
    result, _ = _execute(populated_store, traffic.UID, traffic_sql.CAMERAS_NEEDING_ATTENTION)
    health = {row[1]: row[0] for row in result.result_rows}
    expected = populated_store.expected
    assert {c for c, h in health.items() if h == "silent"} == expected.silent_cameras
    assert {c for c, h in health.items() if h == "offline"} == expected.offline_cameras
    assert "degraded" in health.values()
    counts = _one(populated_store, traffic.UID, traffic_sql.CAMERAS_SILENT)
    assert counts == {"silent": len(expected.silent_cameras), "offline": 1}
    # Same verdicts on a server that fills unmatched join columns with NULLs.
    board = populated_store.boards[traffic.UID]
    time = time_range(board, expected.now)
    context = Context(time, resolve_variables(board, populated_store, time))
    store = populated_store
    sql = expand(fill(traffic_sql.CAMERAS_SILENT, store.database, store.profile.timezone), context)
    nulls = populated_store.client.query(sql, settings={"join_use_nulls": 1})
    assert nulls.result_rows == [(len(expected.silent_cameras), 1)]


def test_map_places_every_camera_and_colours_by_saturation(populated_store: Store) -> None:
    result, _ = _execute(populated_store, traffic.UID, traffic_sql.CAMERA_MAP)
    rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
    assert len(rows) == len(populated_store.profile.cameras)
    by_id = {c.camera_id: c for c in populated_store.profile.cameras}
    for row in rows:
        camera = by_id[str(row["camera_id"])]
        assert math.isclose(float(str(row["latitude"])), camera.lat)
        assert math.isclose(float(str(row["longitude"])), camera.lon)
    silent = [r for r in rows if r["camera_id"] in populated_store.expected.silent_cameras]
    assert all(r["saturation_pct"] is None for r in silent)
    assert any(isinstance(r["saturation_pct"], float) and r["saturation_pct"] > 0 for r in rows)


def test_violations_count_every_record_once(populated_store: Store) -> None:
    found = _one(populated_store, traffic.UID, traffic_sql.VIOLATIONS_COUNT)
    assert found["violations"] == populated_store.expected.violations


def test_pipeline_counters_become_per_interval_increases(populated_store: Store) -> None:
    found = _one(populated_store, pipeline.UID, pipeline_sql.RANGE_COUNTS)
    assert found["late_events"] == populated_store.expected.late_events
    rate = _one(populated_store, pipeline.UID, pipeline_sql.EVENTS_NOW)
    # 3 topics x 3 partitions, 900 events per 10 s checkpoint each.
    assert rate["events_per_second"] == pytest.approx(9 * 90, rel=0.2)


def test_checkpoint_panels_show_each_partition_and_the_cadence(populated_store: Store) -> None:
    result, _ = _execute(populated_store, pipeline.UID, pipeline_sql.PARTITIONS_NOW)
    rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
    # 3 topics x 3 partitions, each checkpointed last 10 s before the store's `now`.
    assert len(rows) == 9 and {r["seconds_since"] for r in rows} == {10}
    assert {r["lag"] for r in rows} == {50, 100, 150}
    gaps, _ = _execute(populated_store, pipeline.UID, pipeline_sql.CHECKPOINT_GAPS)
    assert {row[2] for row in gaps.result_rows} == {10.0}  # every 10 s, no restart


def test_dlq_stat_counts_the_last_five_minutes(populated_store: Store) -> None:
    found = _one(populated_store, pipeline.UID, pipeline_sql.DLQ_NOW)
    assert found["dlq_messages"] == sum(populated_store.expected.dlq_last_5_min.values())


def test_utility_shares_sit_near_their_targets(populated_store: Store) -> None:
    found = _one(populated_store, cashless.UID, cashless.UTILITIES_NOW)
    assert 99 < float(str(found["electricity"])) <= 100
    assert 84 < float(str(found["water"])) < 88
    assert 80 < float(str(found["telecom"])) < 84


def test_portal_rates_are_percentages(populated_store: Store) -> None:
    found = _one(populated_store, portal.UID, portal.KPIS_NOW)
    for name in portal.RATES:
        assert 0 <= float(str(found[name])) <= 100, name


def test_dashboards_show_the_city_profiles_days(populated_store: Store) -> None:
    """The store's city is on Lisbon's clock: the dashboards' zone is Lisbon's and a day of
    the portal is drawn at Lisbon's midnight, not Vietnam's (17:00 or 18:00 the day before)."""
    city = populated_store.profile.tz
    assert {b["timezone"] for b in populated_store.boards.values()} == {OTHER_ZONE}
    result, _ = _execute(populated_store, portal.UID, portal.DOSSIERS_PER_DAY)
    starts = [row[0].astimezone(city) for row in result.result_rows]
    assert starts and all((s.hour, s.minute) == (0, 0) for s in starts)
    assert starts[-1].date() == populated_store.expected.now.astimezone(city).date()
