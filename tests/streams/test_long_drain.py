"""Half a million camera events drained to the end, three times in a row: no silent stall.

The old engine stopped for good after ~110k of 200k events in one run out of three (group
Stable, partitions assigned, every thread idle, no log line). Each drain here is a new app
(its own group and store) on the same topic, and must reach lag 0 with every vehicle counted.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from city import topics
from tests.factories import CLASSES, T0
from tests.pipeline import BOOTSTRAP, PipelineRun

pytestmark = pytest.mark.integration

EVENTS = 500_000
DRAINS = 3
CAMERAS = [f"VT-CAM-{n:03d}" for n in range(1, 197)]


def _passages(count: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `count` passages over ~3 hours, in time order per camera."""
    rng = random.Random(500)
    for n in range(count):
        camera = rng.choice(CAMERAS)
        ts = T0 + n * 20
        value = (
            f'{{"event_id":"p{n}","camera_id":"{camera}","ts":{ts},"kind":"passage",'
            f'"vehicle_class":"{rng.choice(CLASSES)}"}}'
        )
        yield camera.encode(), value.encode()


@pytest.fixture(scope="module")
def camera_topic(broker: str, tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    run = PipelineRun(data_dir=tmp_path_factory.mktemp("long-drain"), partitions=6)
    run.create_topics()
    producer = KafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=50, batch_size=512 * 1024
    )
    for key, value in _passages(EVENTS):
        producer.send(run.topic(topics.CAMERA_EVENTS), key=key, value=value)
    producer.flush()
    producer.close()
    return run


@pytest.mark.parametrize("drain", range(DRAINS))
def test_half_a_million_events_drain_to_lag_zero(
    camera_topic: PipelineRun, tmp_path: Path, drain: int
) -> None:
    run = PipelineRun(
        data_dir=tmp_path,
        partitions=camera_topic.partitions,
        prefix=camera_topic.prefix,
        group=f"drain-{drain}-{uuid.uuid4().hex[:6]}",
    )
    worker = run.start_worker()
    run.wait_until_assigned(worker)
    run.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=300)
    assert run.stop_worker(worker) == 0
    assert run.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL") == [(EVENTS,)]
    assert run.rows(
        "SELECT sum(l), max(lag_at_end) FROM (SELECT argMax(late, offset) AS l, "
        "argMax(lag, offset) AS lag_at_end FROM vtops.pipeline_progress FINAL GROUP BY partition)"
    ) == [(0, 0)]
