"""`vtops dlq show|redrive`: dead letters of a camera missing from the profile, re-driven once
the profile has it, count once however often they arrive."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer

from city import topics
from tests.factories import T0, passage
from tests.pipeline import BOOTSTRAP, PipelineRun
from tests.streams.test_traffic_pipeline import flow_rows

pytestmark = pytest.mark.integration

NEW_CAMERA = "VT-CAM-197"


def profile_with_new_camera(path: Path) -> Path:
    city = json.loads(Path("city/profiles/vung-tau.json").read_text())
    city["cameras"].append({**city["cameras"][0], "camera_id": NEW_CAMERA})
    path.write_text(json.dumps(city))
    return path


def partitions_of(run: PipelineRun, event_id: str) -> list[int]:
    consumer = KafkaConsumer(
        run.topic(topics.CAMERA_EVENTS),
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    found = [m.partition for m in consumer if m.value and event_id.encode() in m.value]
    consumer.close()
    return found


def test_redriven_dead_letters_that_are_now_valid_are_counted_once(
    pipeline: PipelineRun, tmp_path: Path
) -> None:
    known = [passage(f"k{n}", "VT-CAM-001", T0 + n * 1000, "car") for n in range(3)]
    new = [passage(f"n{n}", NEW_CAMERA, T0 + 5000 + n * 1000, "bus") for n in range(2)]
    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", [*known, *new, new[0]])
    pipeline.produce(topics.CAMERA_EVENTS, [("VT-CAM-001", b"{broken")])
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0
    assert (NEW_CAMERA, T0 // 1000) not in flow_rows(pipeline)

    shown = pipeline.vtops("dlq", "show", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    assert sorted(letter["error"].split(":")[0] for letter in orjson.loads(shown.stdout)) == [
        "camera_id",
        "camera_id",
        "camera_id",
        "payload",
    ]
    dry = pipeline.vtops("dlq", "redrive", "--reason", "CAMERA_ID", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would send 3 to {pipeline.topic(topics.CAMERA_EVENTS)}" in dry.stdout

    # The fix: the camera is in the profile now. Re-drive its letters, twice.
    pipeline.extra_env["VTOPS_CITY_PROFILE"] = str(profile_with_new_camera(tmp_path / "c.json"))
    worker = pipeline.start_worker()
    for _ in range(2):
        sent = pipeline.vtops("dlq", "redrive", "--reason", "camera_id", "--yes")
        assert sent.returncode == 0, sent.stderr
        assert "Re-drove 3 dead letters." in sent.stdout
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0

    # Six copies of two events: each counted once, on the partition of its first copy.
    assert flow_rows(pipeline)[(NEW_CAMERA, T0 // 1000)][:4] == (2, 0, 0, 2)
    assert len(set(partitions_of(pipeline, '"n0"'))) == 1
    assert len(partitions_of(pipeline, '"n0"')) == 2 + 4
    duplicates = pipeline.rows(
        "SELECT sum(d) FROM (SELECT partition, argMax(duplicates, offset) AS d "
        "FROM vtops.pipeline_progress FINAL GROUP BY partition)"
    )
    assert duplicates == [(4,)]
