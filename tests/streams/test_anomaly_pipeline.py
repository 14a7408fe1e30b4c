"""Traffic anomalies through Kafka and `vtops worker`: injected incidents open and resolve
exactly the expected alerts, in `traffic_alerts` and on `traffic.alerts`; the same city with
nothing injected raises none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from city import topics
from city.calendar import DAY_TYPES
from streams.traffic.anomaly.baselines import ALWAYS, BASELINES_TABLE, COLUMNS, SLOTS_PER_DAY
from tests.anomaly_city import CAMERAS, USUAL, Minute, Plan, events, usual
from tests.pipeline import PipelineRun

pytestmark = pytest.mark.integration

MINUTES = 45
BASELINE_VERSION = 11


def incidents(camera: str, index: int) -> Minute:
    if camera == CAMERAS[0] and 20 <= index < 30:
        return Minute(vehicles=0, heartbeat=None)  # dark: offline
    if camera == CAMERAS[1] and 20 <= index < 35:
        return Minute(speed=18.0)  # congestion
    return Minute()


def baseline_rows() -> list[list[Any]]:
    shares = [
        USUAL.class_share[c] for c in ("motorbike", "car", "bus", "truck", "bicycle", "other")
    ]
    return [
        [camera, day, slot, USUAL.vehicles, USUAL.vehicles_mad, USUAL.speed_kmh, USUAL.speed_mad,
         USUAL.violation_rate, *shares, 100, "history", BASELINE_VERSION, ALWAYS]
        for camera in CAMERAS for day in DAY_TYPES for slot in range(SLOTS_PER_DAY)
    ]  # fmt: skip


def run_city(broker: str, data_dir: Path, plan: Plan) -> PipelineRun:
    run = PipelineRun(data_dir=data_dir)
    run.create_topics()
    migrated = run.vtops("migrate")
    assert migrated.returncode == 0, migrated.stderr
    with run.store() as client:
        client.insert(f"vtops.{BASELINES_TABLE}", baseline_rows(), column_names=list(COLUMNS))
    run.produce_events(topics.CAMERA_EVENTS, "camera_id", events(plan, 0, MINUTES))
    worker = run.start_worker()
    run.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert run.stop_worker(worker) == 0
    return run


@pytest.fixture(scope="module")
def injected(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRun]:
    yield run_city(broker, tmp_path_factory.mktemp("injected"), incidents)


def alerts(run: PipelineRun) -> list[tuple[Any, ...]]:
    return run.rows(
        "SELECT kind, camera_id, status, state, reopens, baseline_version, version, alert_id"
        " FROM vtops.traffic_alerts FINAL ORDER BY kind"
    )


def test_injected_incidents_open_and_resolve_exactly_their_alerts(injected: PipelineRun) -> None:
    found = alerts(injected)
    assert [row[:6] for row in found] == [
        ("camera_offline", CAMERAS[0], "resolved", "resolved", 0, BASELINE_VERSION),
        ("congestion", CAMERAS[1], "resolved", "resolved", 0, BASELINE_VERSION),
    ]


def test_the_alerts_topic_carries_every_write_of_the_same_alerts(injected: PipelineRun) -> None:
    consumer = KafkaConsumer(
        injected.topic(topics.TRAFFIC_ALERTS),
        bootstrap_servers=injected.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3_000,
    )
    writes: dict[str, dict[int, str]] = {}
    for message in consumer:
        row = orjson.loads(message.value)
        assert message.key == row["alert_id"].encode()
        writes.setdefault(row["alert_id"], {})[row["version"]] = row["state"]
    consumer.close()
    table = {row[7]: row[6] for row in alerts(injected)}
    assert {alert: max(versions) for alert, versions in writes.items()} == table
    for versions in writes.values():
        states = [versions[v] for v in sorted(versions)]
        assert sorted(versions) == list(range(1, len(versions) + 1))
        assert states[0] == "open" and states[-1] == "resolved", states


def test_the_same_city_with_nothing_injected_raises_no_alert(
    broker: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    control = run_city(broker, tmp_path_factory.mktemp("control"), usual)
    assert alerts(control) == []
    assert control.rows("SELECT count() FROM vtops.traffic_flow_1m FINAL")[0][0] > 0
