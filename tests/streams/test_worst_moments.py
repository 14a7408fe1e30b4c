"""R4 at the worst moments: `vtops worker` SIGKILLed before its first checkpoint, while a
restore re-reads the open windows' event ids, and between the ClickHouse inserts of a
checkpoint and its state save. The worker holds still at each moment (streams/engine/pause.py,
set by tests/paused_worker.py) until the test kills it; the rows at the end are exact."""

from __future__ import annotations

import random
import signal

import pytest

from city import topics
from tests.factories import expected_from, random_traffic
from tests.pipeline import PipelineRun
from tests.streams.test_traffic_pipeline import CAMERAS, flow_rows
from vtops.kafka.offsets import remaining

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

VEHICLES_SQL = "SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL"


def killed_at(pipeline: PipelineRun, point: str | None) -> None:
    """A worker started to be SIGKILLed at `point` (None: once everything is checkpointed)."""
    worker = pipeline.start_worker(paused_at=point)
    if point is None:
        pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    else:
        pipeline.wait_for_log(worker, f"paused at {point}")
    assert pipeline.stop_worker(worker, signal.SIGKILL) == -signal.SIGKILL


def test_sigkills_at_the_worst_moments_leave_exact_rows(pipeline: PipelineRun) -> None:
    camera = pipeline.topic(topics.CAMERA_EVENTS)
    events = random_traffic(random.Random(8), CAMERAS, minutes=30, count=6_000)
    first, second, third = events[:2_000], events[2_000:4_000], events[4_000:]

    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", first)
    killed_at(pipeline, "checkpoint")
    assert remaining(pipeline.kafka_settings, camera) == len(first)
    assert pipeline.rows(VEHICLES_SQL) in ([(0,)], [(None,)])  # the cut was never written

    killed_at(pipeline, None)  # a saved state with open windows, for the restores below
    killed_at(pipeline, "restore")

    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", second)
    killed_at(pipeline, "before-state-save")
    # Rows of the second stretch are in ClickHouse; the state and offsets that cover them not.
    assert remaining(pipeline.kafka_settings, camera) == len(second)
    ((saved,),) = pipeline.rows(VEHICLES_SQL)
    assert saved > sum(row[0] for row in expected_from(first, pipeline.partitions).rows().values())

    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", third)
    worker = pipeline.start_worker()
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=120)
    assert pipeline.stop_worker(worker) == 0
    assert flow_rows(pipeline) == expected_from(events, pipeline.partitions).rows()
