"""Baselines learned from traffic_flow_1m on the real embedded ClickHouse: empty minutes count
as no vehicles while the pipeline recorded, alert minutes are left out, kinds of day follow the
city's calendar, thin slots take the priors, and every refresh is one new version."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from city.profile import CityProfile, load_city_profile
from schemas.camera import VEHICLE_CLASSES
from simulator.baseline_priors import prior_baselines
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.settings import StorageSettings
from streams.traffic.anomaly.alerts import PARTITION_WIDE
from streams.traffic.anomaly.baselines import (
    SLOTS_PER_DAY,
    Baselines,
    BaselineVersion,
    SlotKey,
    read_version,
)
from streams.traffic.anomaly.timeline import BaselineTimeline, StoredVersions, load_baselines
from tests.pipeline import VTOPS
from vtops.baselines import PRIOR_VERSION, ensure_baselines, refresh_baselines
from vtops.cli.baselines import DEFAULT_MIN_SAMPLES
from vtops.incidents import UnknownAlertError, confirm_incident

CAMERAS = ("VT-CAM-002", "VT-CAM-003", "VT-CAM-004")
A, B, C = CAMERAS
CITY_TZ = load_city_profile().tz
WEDNESDAY = datetime(2024, 9, 18, 8, 0, tzinfo=CITY_TZ)  # slot 32 of a weekday
SATURDAY = datetime(2024, 9, 21, 8, 0, tzinfo=CITY_TZ)
NATIONAL_DAY = datetime(2024, 9, 2, 8, 0, tzinfo=CITY_TZ)  # a Monday, and a holiday
SLOT = 32
# When the versions the tests refresh take effect (a week after the history they learn from).
LATER = datetime(2024, 9, 25, tzinfo=CITY_TZ)
_databases = count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # chDB runs one embedded engine per process: one store, a database per case.
    opened = connect(StorageSettings(data_dir=tmp_path_factory.mktemp("baselines")))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def database(store: Client) -> str:
    name = f"baselines_{next(_databases)}"
    migrate(store, name, timezone=CITY_TZ.key)  # traffic_baseline_versions among the rest
    return name


@pytest.fixture(scope="module")
def store_thread() -> Iterator[ThreadPoolExecutor]:
    """The store's one thread, as a worker asks the store through it."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse") as thread:
        yield thread


@pytest.fixture(scope="module")
def city() -> CityProfile:
    full = load_city_profile()
    return full.model_copy(
        update={"cameras": tuple(c for c in full.cameras if c.camera_id in CAMERAS)}
    )


def insert_minutes(
    client: Client,
    database: str,
    camera_id: str,
    start: datetime,
    vehicles: Sequence[int | None],
    speed: float | None = 30.0,
    violations: int = 0,
) -> None:
    """One traffic_flow_1m row per minute from `start`; None leaves the minute without a row.
    Nine in ten vehicles are motorbikes, the rest cars."""
    rows = []
    for n, count_ in enumerate(vehicles):
        if count_ is None:
            continue
        cars = count_ // 10
        classes = {c: 0 for c in VEHICLE_CLASSES} | {"motorbike": count_ - cars, "car": cars}
        rows.append([
            camera_id, "phuong-1", start + timedelta(minutes=n), count_,
            *classes.values(), float(count_), speed if count_ else None, violations, 1, 1,
        ])  # fmt: skip
    client.insert(
        f"{database}.traffic_flow_1m",
        rows,
        column_names=["camera_id", "ward", "window_start", "vehicles", *VEHICLE_CLASSES,
                      "pcu", "avg_speed_kmh", "violations", "final", "version"],
    )  # fmt: skip


def baselines(client: Client, database: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The latest version's rows."""
    result = client.query(
        f"SELECT * FROM {database}.traffic_baseline_versions FINAL "
        f"WHERE version = (SELECT max(version) FROM {database}.traffic_baseline_versions)"
    )
    return {(r["camera_id"], r["day_type"], r["slot"]): r for r in result.named_results()}


def test_medians_count_empty_minutes_only_while_the_pipeline_recorded(
    store: Client, database: str, city: CityProfile
) -> None:
    # B is busy every minute of 08:00-08:15 and 08:15-08:30; A has rows in 7 of the first 15
    # minutes only, and none after; C has nothing that day.
    insert_minutes(store, database, B, WEDNESDAY, list(range(1, 31)), violations=1)
    insert_minutes(store, database, A, WEDNESDAY, [10] * 7 + [None] * 8)
    summary = refresh_baselines(
        store, database, city, min_samples=DEFAULT_MIN_SAMPLES, effective_from=LATER, version=5
    )
    rows = baselines(store, database)
    assert len(rows) == len(CAMERAS) * 3 * SLOTS_PER_DAY
    assert {r["version"] for r in rows.values()} == {5}

    b = rows[(B, "weekday", SLOT)]
    assert (b["source"], b["samples"]) == ("history", 15)
    assert (b["vehicles_median"], b["vehicles_mad"]) == (8.0, 4.0)  # 1..15
    assert (b["speed_median"], b["speed_mad"]) == (30.0, 0.0)
    # 15 violations in 120 vehicles, and the prior's rate weighing as 500 vehicles.
    prior_rate = prior_baselines(city)[(B, "weekday", SLOT)].violation_rate
    assert b["violation_rate"] == pytest.approx((15 + 500 * prior_rate) / (120 + 500))
    assert b["car_share"] == pytest.approx(sum(n // 10 for n in range(1, 16)) / 120)
    assert rows[(B, "weekday", SLOT + 1)]["vehicles_median"] == 23.0  # 16..30

    # A's eight empty minutes are minutes without vehicles: the median is 0.
    a = rows[(A, "weekday", SLOT)]
    assert (a["source"], a["samples"], a["vehicles_median"]) == ("history", 15, 0.0)
    assert a["speed_median"] == 30.0  # of the minutes that had a speed
    # The slot after counts as well: the pipeline recorded B then, and A had data that day.
    assert rows[(A, "weekday", SLOT + 1)]["vehicles_median"] == 0.0
    # Nothing recorded at night, nothing for C: priors.
    prior = prior_baselines(city)
    keys: list[SlotKey] = [(A, "weekday", 12), (C, "weekday", SLOT), (B, "saturday", SLOT)]
    for key in keys:
        assert (rows[key]["source"], rows[key]["samples"]) == ("prior", 0)
        assert rows[key]["vehicles_median"] == pytest.approx(prior[key].vehicles)
    assert (summary.from_history, summary.from_priors) == (4, len(rows) - 4)
    assert summary.history_days == {"weekday": 1}


def test_minutes_inside_alerts_are_left_out(
    store: Client, database: str, city: CityProfile
) -> None:
    insert_minutes(store, database, B, WEDNESDAY, [10] * 5 + [200] * 5 + [10] * 5)
    insert_minutes(store, database, A, WEDNESDAY, [0] * 15)
    store.insert(
        f"{database}.traffic_alerts",
        [
            # Anomalous from 08:05, opened at 08:08 (k of n minutes), resolved at 08:10.
            ["a1", B, "phuong-1", "flow_surge", "warning", WEDNESDAY + timedelta(minutes=5),
             WEDNESDAY + timedelta(minutes=8), WEDNESDAY + timedelta(minutes=10), 200.0, 10.0,
             9.0, "resolved", 1],
            ["a2", A, "phuong-1", "camera_silent", "warning", WEDNESDAY + timedelta(minutes=3),
             WEDNESDAY + timedelta(minutes=3), None, 0.0, 10.0, 9.0, "open", 1],
        ],
        column_names=["alert_id", "camera_id", "ward", "kind", "severity", "first_anomalous_at",
                      "opened_at", "resolved_at", "observed", "expected", "score", "status",
                      "version"],
    )  # fmt: skip
    refresh_baselines(store, database, city, min_samples=3, effective_from=LATER, version=1)
    rows = baselines(store, database)
    b = rows[(B, "weekday", SLOT)]
    assert (b["samples"], b["vehicles_median"], b["vehicles_mad"]) == (10, 10.0, 0.0)
    # A's alert is still open: a shift to learn, not an incident to leave out (issue 18).
    a = rows[(A, "weekday", SLOT)]
    assert (a["samples"], a["vehicles_median"]) == (15, 0.0)
    # Fifteen samples are the default: ten are too few.
    refresh_baselines(
        store, database, city, min_samples=DEFAULT_MIN_SAMPLES, effective_from=LATER, version=2
    )
    assert baselines(store, database)[(B, "weekday", SLOT)]["source"] == "prior"


def test_a_confirmed_incident_is_left_out_even_while_open(
    store: Client, database: str, city: CityProfile
) -> None:
    insert_minutes(store, database, A, WEDNESDAY, [40] * 3 + [0] * 12)
    insert_minutes(store, database, B, WEDNESDAY, [40] * 3 + [0] * 12)
    # Both cameras went dark at 08:03 and their alerts are still open; A's is confirmed.
    store.insert(
        f"{database}.traffic_alerts",
        [[f"dark-{camera}", camera, "phuong-1", "camera_silent", "warning",
          WEDNESDAY + timedelta(minutes=3), WEDNESDAY + timedelta(minutes=5), None, 0.0, 40.0,
          9.0, "open", 1] for camera in (A, B)],
        column_names=["alert_id", "camera_id", "ward", "kind", "severity", "first_anomalous_at",
                      "opened_at", "resolved_at", "observed", "expected", "score", "status",
                      "version"],
    )  # fmt: skip
    confirmed = confirm_incident(store, database, f"dark-{A}", "road closed", LATER)
    assert (confirmed.kind, confirmed.camera_id, confirmed.status) == ("camera_silent", A, "open")
    with pytest.raises(UnknownAlertError, match="ALERT_ID: no alert 'dark-X'"):
        confirm_incident(store, database, "dark-X", "", LATER)
    refresh_baselines(store, database, city, min_samples=3, effective_from=LATER, version=1)
    rows = baselines(store, database)
    # A: only the three minutes before the incident, up to the end of history, are learned.
    a = rows[(A, "weekday", SLOT)]
    assert (a["samples"], a["vehicles_median"]) == (3, 40.0)
    # B's open alert is not confirmed: a shift, learned.
    b = rows[(B, "weekday", SLOT)]
    assert (b["samples"], b["vehicles_median"]) == (15, 0.0)


def test_a_confirmed_city_wide_incident_leaves_out_every_camera(
    store: Client, database: str, city: CityProfile
) -> None:
    """site_offline and citywide_shift name no camera (`*`): confirmed, they leave out the
    minutes of every camera while they last."""
    for camera in (A, B):
        insert_minutes(store, database, camera, WEDNESDAY, [40] * 10 + [400] * 5)
    store.insert(
        f"{database}.traffic_alerts",
        [["shift", PARTITION_WIDE, PARTITION_WIDE, "citywide_shift", "warning",
          WEDNESDAY + timedelta(minutes=10), WEDNESDAY + timedelta(minutes=12), None, 400.0,
          40.0, 9.0, "open", 1]],
        column_names=["alert_id", "camera_id", "ward", "kind", "severity", "first_anomalous_at",
                      "opened_at", "resolved_at", "observed", "expected", "score", "status",
                      "version"],
    )  # fmt: skip
    confirm_incident(store, database, "shift", "the festival", LATER)
    refresh_baselines(store, database, city, min_samples=3, effective_from=LATER, version=1)
    rows = baselines(store, database)
    for camera in (A, B):
        slot = rows[(camera, "weekday", SLOT)]
        assert (slot["samples"], slot["vehicles_median"]) == (10, 40.0)


def test_slots_and_days_are_the_city_profiles(store: Client, city: CityProfile) -> None:
    """A city on Lisbon's clock: Friday 20:00 there (Saturday 02:00 in Vietnam) is a weekday's
    slot 80, and an alert's minutes are left out there too."""
    lisbon = city.model_copy(update={"timezone": "Europe/Lisbon"})
    database = f"baselines_{next(_databases)}"
    migrate(store, database, timezone=lisbon.timezone)
    friday = datetime(2024, 9, 20, 20, 0, tzinfo=lisbon.tz)
    insert_minutes(store, database, B, friday, [10] * 10 + [200] * 5)
    store.insert(
        f"{database}.traffic_alerts",
        [["a1", B, "phuong-1", "flow_surge", "warning", friday + timedelta(minutes=10),
          friday + timedelta(minutes=12), friday + timedelta(minutes=15), 200.0, 10.0, 9.0,
          "resolved", 1]],
        column_names=["alert_id", "camera_id", "ward", "kind", "severity", "first_anomalous_at",
                      "opened_at", "resolved_at", "observed", "expected", "score", "status",
                      "version"],
    )  # fmt: skip
    summary = refresh_baselines(
        store, database, lisbon, min_samples=3, effective_from=LATER, version=1
    )
    b = baselines(store, database)[(B, "weekday", 80)]
    assert (b["source"], b["samples"], b["vehicles_median"]) == ("history", 10, 10.0)
    assert summary.history_days == {"weekday": 1}


def test_kinds_of_day_follow_the_city_calendar(
    store: Client, database: str, city: CityProfile
) -> None:
    insert_minutes(store, database, B, WEDNESDAY, [10] * 15)
    insert_minutes(store, database, B, SATURDAY, [20] * 15)
    insert_minutes(store, database, B, NATIONAL_DAY, [40] * 15)  # a Monday, a holiday
    summary = refresh_baselines(
        store, database, city, min_samples=DEFAULT_MIN_SAMPLES, effective_from=LATER, version=3
    )
    rows = baselines(store, database)
    medians = {day: rows[(B, day, SLOT)]["vehicles_median"] for day in ("weekday", "saturday")}
    assert medians == {"weekday": 10.0, "saturday": 20.0}
    assert rows[(B, "sunday_holiday", SLOT)]["vehicles_median"] == 40.0
    assert summary.history_days == {"weekday": 1, "saturday": 1, "sunday_holiday": 1}


def test_a_slot_without_vehicles_keeps_the_priors_rates_and_speeds(
    store: Client, database: str, city: CityProfile
) -> None:
    insert_minutes(store, database, B, WEDNESDAY, [5] * 15)
    insert_minutes(store, database, A, WEDNESDAY, [0] * 15)
    refresh_baselines(
        store, database, city, min_samples=DEFAULT_MIN_SAMPLES, effective_from=LATER, version=4
    )
    a = baselines(store, database)[(A, "weekday", SLOT)]
    prior = prior_baselines(city)[(A, "weekday", SLOT)]
    assert (a["source"], a["vehicles_median"]) == ("history", 0.0)
    assert a["speed_median"] == pytest.approx(prior.speed_kmh)
    assert a["violation_rate"] == pytest.approx(prior.violation_rate)
    assert a["motorbike_share"] == pytest.approx(prior.class_share["motorbike"])
    # B saw 75 vehicles and no violation: too few to expect none (the first five would be a
    # spike); the prior's rate weighs as 500 vehicles.
    b_prior = prior_baselines(city)[(B, "weekday", SLOT)].violation_rate
    b = baselines(store, database)[(B, "weekday", SLOT)]
    assert b["violation_rate"] == pytest.approx(500 * b_prior / (75 + 500))
    assert b["violation_rate"] > 0.8 * b_prior


def test_each_refresh_is_a_version_judging_from_its_effective_time(
    store: Client, database: str, city: CityProfile, store_thread: ThreadPoolExecutor
) -> None:
    written = ensure_baselines(store, database, city, store_thread)
    assert written is not None and len(written.slots) == len(CAMERAS) * 3 * SLOTS_PER_DAY
    # What a fresh worker judges by without reading it back is what a restart reads.
    assert written == read_version(store, database, PRIOR_VERSION)
    insert_minutes(store, database, B, WEDNESDAY, [7] * 15)
    first = refresh_baselines(
        store, database, city, min_samples=DEFAULT_MIN_SAMPLES, effective_from=LATER
    ).version
    insert_minutes(store, database, B, WEDNESDAY + timedelta(days=7), [9] * 15)
    second = refresh_baselines(
        store,
        database,
        city,
        min_samples=DEFAULT_MIN_SAMPLES,
        effective_from=LATER + timedelta(days=7),
    ).version
    assert PRIOR_VERSION < first < second
    with ThreadPoolExecutor(max_workers=1) as reads:
        timeline = load_baselines(store, database, reads)
        # Each minute by the version in force at its time: the priors before the first
        # refresh took effect, the first until the second took effect.
        for at, version, vehicles in [
            (WEDNESDAY, PRIOR_VERSION, prior_baselines(city)[(B, "weekday", SLOT)].vehicles),
            (WEDNESDAY + timedelta(days=7), first, 7.0),
            (WEDNESDAY + timedelta(days=14), second, 8.0),  # median of 7 × 15 and 9 × 15
        ]:
            ms = int(at.timestamp() * 1000)
            assert timeline.version_at(ms) == version
            slot = timeline.at(B, ms, CITY_TZ)
            assert slot is not None and slot.vehicles == pytest.approx(vehicles)
        assert timeline.version_at(int(LATER.timestamp() * 1000) - 1) == PRIOR_VERSION
        assert timeline.version_at(int(LATER.timestamp() * 1000)) == first
    # Baselines exist now: ensure leaves them alone.
    assert ensure_baselines(store, database, city, store_thread) is None


def test_a_refresh_takes_effect_at_a_whole_minute(
    store: Client, database: str, city: CityProfile, store_thread: ThreadPoolExecutor
) -> None:
    """Alerts are stamped with the version of their minute: a version starting mid-minute
    would judge that minute by the old slots and stamp it with the new version."""
    ensure_baselines(store, database, city, store_thread)
    asked = LATER + timedelta(seconds=30)
    summary = refresh_baselines(
        store, database, city, min_samples=DEFAULT_MIN_SAMPLES, effective_from=asked
    )
    assert summary.effective_from == LATER + timedelta(minutes=1)
    with ThreadPoolExecutor(max_workers=1) as reads:
        timeline = load_baselines(store, database, reads)
        assert timeline.versions[-1].effective_from_ms == int(LATER.timestamp() * 1000) + 60_000


def test_a_failed_read_of_a_version_is_tried_again() -> None:
    failures = [ConnectionError("the store blinked")]

    def read(version: int) -> Baselines:
        if failures:
            raise failures.pop()
        return Baselines({}, version)

    with ThreadPoolExecutor(max_workers=1) as reads:
        timeline = BaselineTimeline(StoredVersions([BaselineVersion(0, 7)]), read, reads)
        timeline.prefetch(7).exception()  # the background read fails
        assert timeline.baselines_at(1_000).version == 7


def test_a_store_made_before_versions_keeps_its_baselines_as_one_since_always(
    store: Client,
) -> None:
    database = f"baselines_{next(_databases)}"
    migrate(store, database, timezone=CITY_TZ.key, target=7)
    shares = [0.9, 0.1, 0.0, 0.0, 0.0, 0.0]
    row = [B, "weekday", SLOT, 7.0, 1.0, 30.0, 2.0, 0.01, *shares, 15, "history", 42]
    store.insert(f"{database}.traffic_baselines", [row, [*row[:-1], 41]])
    migrate(store, database, timezone=CITY_TZ.key)
    with ThreadPoolExecutor(max_workers=1) as reads:
        timeline = load_baselines(store, database, reads)
        assert [(v.effective_from_ms, v.version) for v in timeline.versions] == [(0, 42)]
        slot = timeline.at(B, int(WEDNESDAY.timestamp() * 1000), CITY_TZ)
        assert slot is not None and (slot.vehicles, slot.learned) == (7.0, True)
    tables = store.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'traffic_base%'",
        parameters={"db": database},
    ).result_rows
    assert tables == [("traffic_baseline_versions",)]


def test_the_cli_refreshes_and_shows_a_camera(tmp_path: Path) -> None:
    env = {**os.environ, "VTOPS_DATA_DIR": str(tmp_path)}

    def vtops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VTOPS, *args], env=env, capture_output=True, text=True, timeout=180, check=False
        )

    missing = vtops("baselines", "show", "--camera", "VT-CAM-002")
    assert missing.returncode == 1
    assert "run `vtops migrate` first" in missing.stderr
    assert vtops("migrate").returncode == 0
    refreshed = vtops("baselines", "refresh", "--output", "json")
    assert refreshed.returncode == 0, refreshed.stderr
    report = json.loads(refreshed.stdout)
    # Effective from ahead of now, by twice the workers' reading interval (15 minutes), at the
    # next whole minute.
    effective = datetime.fromisoformat(report["effective_from"])
    assert effective.second == 0
    assert timedelta(minutes=29) < effective - datetime.now(CITY_TZ) <= timedelta(minutes=31)
    assert report["slots_from_history"] == 0
    assert report["slots_from_priors"] == len(load_city_profile().cameras) * 3 * SLOTS_PER_DAY
    shown = vtops("baselines", "show", "--camera", "VT-CAM-002", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    day = json.loads(shown.stdout)
    assert [(r["day_type"], r["slot"]) for r in day[:2]] == [("weekday", 0), ("weekday", 1)]
    assert len(day) == 3 * SLOTS_PER_DAY
    assert {r["version"] for r in day} == {report["version"]}
    table = vtops("baselines", "show", "--camera", "VT-CAM-002")
    assert "07:45" in table.stdout and "prior" in table.stdout
    stated = vtops(
        "baselines", "refresh", "--effective-from", "2024-09-25T06:00", "--output", "json"
    )
    assert json.loads(stated.stdout)["effective_from"] == "2024-09-25T06:00:00+07:00"
    wrong = vtops("baselines", "refresh", "--effective-from", "tomorrow")
    assert wrong.returncode != 0
    assert wrong.stderr.strip() == "error: --effective-from: not an ISO 8601 time: 'tomorrow'"
    not_an_alert = vtops("alerts", "confirm", "flow_drop|VT-CAM-002|0")
    assert not_an_alert.returncode == 1
    assert "ALERT_ID: no alert 'flow_drop|VT-CAM-002|0'" in not_an_alert.stderr
    unknown = vtops("baselines", "show", "--camera", "VT-CAM-999")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "error: --camera: no baselines for 'VT-CAM-999' (run `vtops baselines refresh`)"
    )
