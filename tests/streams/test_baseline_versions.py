"""Baselines refreshed while `vtops worker` runs (issue 18), on the session's ClickHouse server
(an operator's refresh cannot open the embedded store a worker holds): the worker reads the new
version on its schedule and judges the minutes from its effective time by it, without a
restart; a second worker replaying the same input afterwards writes the same alerts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from city import topics
from city.calendar import DAY_TYPES
from simulator.baseline_priors import baseline_row
from streams.traffic.anomaly.baselines import (
    ALWAYS,
    BASELINES_TABLE,
    COLUMNS,
    SLOTS_PER_DAY,
    SlotBaseline,
)
from tests.anomaly_city import CAMERAS, MINUTE, T0, USUAL, Minute, events
from tests.clickhouse_server import own_database
from tests.pipeline import PipelineRun

pytestmark = pytest.mark.integration

BUSY = CAMERAS[2]  # three times the usual traffic, from the first minute
FIRST, SECOND = 11, 12
SECOND_FROM_MINUTE = 30  # the second version's effective time, in minutes after T0
MINUTES = 60
ALERTS = (
    "SELECT alert_id, kind, camera_id, status, first_anomalous_at, resolved_at, "
    "baseline_version, version FROM vtops.traffic_alerts FINAL ORDER BY alert_id"
)


def plan(camera: str, _index: int) -> Minute:
    return Minute(vehicles=60) if camera == BUSY else Minute()


def insert_version(
    run: PipelineRun, version: int, effective_minute: int | None, busy: SlotBaseline
) -> None:
    """A version as `vtops baselines refresh` writes one: every slot of every camera."""
    effective = (
        ALWAYS
        if effective_minute is None
        else datetime.fromtimestamp((T0 + effective_minute * MINUTE) / 1000, UTC)
    )
    rows = [
        baseline_row(
            (camera, day, slot),
            busy if camera == BUSY else USUAL,
            samples=100,
            source="history",
            version=version,
            effective_from=effective,
        )
        for camera in CAMERAS
        for day in DAY_TYPES
        for slot in range(SLOTS_PER_DAY)
    ]
    with run.store() as client:
        client.insert(
            run.sql(f"vtops.{BASELINES_TABLE}"),
            [[row[column] for column in COLUMNS] for row in rows],
            column_names=list(COLUMNS),
        )


def test_a_refresh_while_the_worker_runs_judges_later_minutes_and_replays_alike(
    broker: str, clickhouse_server: str, tmp_path: Path
) -> None:
    learned = dataclasses.replace(USUAL, vehicles=60.0, vehicles_mad=5.0)
    schedule = {"VTOPS_BASELINES_REFRESH_MINUTES": "0.01"}  # read every 0.6 s
    with own_database(clickhouse_server, "live") as live_db:
        live = PipelineRun(
            data_dir=tmp_path,
            clickhouse_url=clickhouse_server,
            database=live_db,
            extra_env=schedule,
        )
        live.create_topics()
        assert live.vtops("migrate").returncode == 0
        insert_version(live, FIRST, None, USUAL)
        worker = live.start_worker()
        try:
            live.produce_events(topics.CAMERA_EVENTS, "camera_id", events(plan, 0, 25))
            live.wait_until_checkpointed(topics.CAMERA_EVENTS)
            opened = live.rows(ALERTS)
            assert [(r[1], r[2], r[3], r[6]) for r in opened] == [
                ("flow_surge", BUSY, "open", FIRST)
            ]
            # The refresh, while the worker runs: read on the schedule, before the minutes
            # it judges are sent.
            insert_version(live, SECOND, SECOND_FROM_MINUTE, learned)
            live.wait_for_log(worker, f"baselines version={SECOND} read", timeout=30)
            live.produce_events(topics.CAMERA_EVENTS, "camera_id", events(plan, 25, MINUTES - 25))
            live.wait_until_checkpointed(topics.CAMERA_EVENTS)
            assert live.stop_worker(worker) == 0
        finally:
            live.kill_leftovers()
        alerts = live.rows(ALERTS)
        # The surge resolved once the new version judged the busy camera's level as usual.
        assert [(r[1], r[3], r[6]) for r in alerts] == [("flow_surge", "resolved", SECOND)]
        assert alerts[0][5] is not None
        assert alerts[0][5].timestamp() * 1000 >= T0 + SECOND_FROM_MINUTE * MINUTE

        with own_database(clickhouse_server, "replay") as replay_db:
            # The same input from its start, read by another group after both versions exist.
            replay = PipelineRun(
                data_dir=tmp_path,
                prefix=live.prefix,
                group=f"{live.app_id}-replay",
                clickhouse_url=clickhouse_server,
                database=replay_db,
                extra_env=schedule,
            )
            assert replay.vtops("migrate").returncode == 0
            insert_version(replay, FIRST, None, USUAL)
            insert_version(replay, SECOND, SECOND_FROM_MINUTE, learned)
            worker = replay.start_worker()
            try:
                replay.wait_until_checkpointed(topics.CAMERA_EVENTS)
                assert replay.stop_worker(worker) == 0
            finally:
                replay.kill_leftovers()
            assert replay.rows(ALERTS) == alerts
