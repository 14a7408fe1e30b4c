"""`vtops dlq show|redrive`: dead letters of a camera missing from the profile, re-driven once
the profile has it, count once however often they arrive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from city import topics
from schemas.dead_letter import dead_letter
from tests.factories import T0, passage
from tests.pipeline import PipelineRun
from tests.streams.test_traffic_pipeline import flow_rows
from vtops.replay.positions import records_between, retained_ranges

pytestmark = pytest.mark.integration

NEW_CAMERA = "VT-CAM-197"


def profile_with_new_camera(path: Path) -> Path:
    city = json.loads(Path("city/profiles/vung-tau.json").read_text())
    city["cameras"].append({**city["cameras"][0], "camera_id": NEW_CAMERA})
    path.write_text(json.dumps(city))
    return path


def partitions_of(run: PipelineRun, event_id: str) -> list[int]:
    """The partition of every copy of the event, read up to the end offsets (no wait)."""
    ranges = retained_ranges(run.kafka_settings, [run.topic(topics.CAMERA_EVENTS)])
    return [
        m.partition
        for tp in sorted(ranges.end)
        for m in records_between(run.kafka_settings, tp, ranges.beginning[tp], ranges.end[tp])
        if m.value and event_id.encode() in m.value
    ]


def letters(run: PipelineRun) -> list[dict[str, Any]]:
    shown = run.vtops("dlq", "show", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    found: list[dict[str, Any]] = orjson.loads(shown.stdout)
    return found


def redrive(run: PipelineRun, *args: str) -> dict[str, Any]:
    done = run.vtops("dlq", "redrive", "--reason", "camera_id", "--output", "json", *args)
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = orjson.loads(done.stdout)
    return summary


def test_each_original_is_redriven_once_and_counted_once_when_valid(
    pipeline: PipelineRun, tmp_path: Path
) -> None:
    """Issue 19, item 3: every re-drive sent the whole dead-letter history again, letters of
    copies that failed again included (30 → 60 → 120), and its dry run did not check them."""
    known = [passage(f"k{n}", "VT-CAM-001", T0 + n * 1000, "car") for n in range(3)]
    new = [passage(f"n{n}", NEW_CAMERA, T0 + 5000 + n * 1000, "bus") for n in range(2)]
    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", [*known, *new, new[0]])
    pipeline.produce(topics.CAMERA_EVENTS, [("VT-CAM-001", b"{broken")])
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    first = letters(pipeline)
    assert sorted(letter["error"].split(":")[0] for letter in first) == [
        "camera_id",
        "camera_id",
        "camera_id",
        "payload",
    ]
    originals = {
        f"{x['source_topic']}/{x['partition']}/{x['offset']}"
        for x in first
        if x["error"].startswith("camera_id")
    }

    # A "fix" that fixes nothing: the dry run says so, and the copies fail again.
    dry = redrive(pipeline, "--dry-run")
    assert (dry["to_send"], dry["valid_now"], dry["sent"]) == (3, 0, 0)
    assert dry["fails_again"] == {"camera_id: not a camera of the city profile": 3}
    assert redrive(pipeline, "--yes")["sent"] == 3
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    again = [x for x in letters(pipeline) if x["redrive_of"] is not None]
    assert sorted(x["redrive_of"] for x in again) == sorted(originals)
    # Six letters of three originals now: nothing goes back twice unless asked.
    second = redrive(pipeline, "--yes")
    assert (second["letters"], second["originals"], second["sent"]) == (6, 3, 0)
    assert pipeline.stop_worker(worker) == 0

    # The fix: the camera is in the profile now. Once more, twice, while the worker runs.
    pipeline.extra_env["VTOPS_CITY_PROFILE"] = str(profile_with_new_camera(tmp_path / "c.json"))
    assert redrive(pipeline, "--again", "--dry-run")["valid_now"] == 3
    worker = pipeline.start_worker()
    for _ in range(2):
        assert redrive(pipeline, "--again", "--yes")["sent"] == 3
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0

    # Eight copies of two events: each counted once, on the partition of its first copy.
    assert flow_rows(pipeline)[(NEW_CAMERA, T0 // 1000)][:4] == (2, 0, 0, 2)
    assert len(set(partitions_of(pipeline, '"n0"'))) == 1
    assert len(partitions_of(pipeline, '"n0"')) == 2 + 2 + 4
    duplicates = pipeline.rows(
        "SELECT sum(d) FROM (SELECT partition, argMax(duplicates, offset) AS d "
        "FROM vtops.pipeline_progress FINAL GROUP BY partition)"
    )
    assert duplicates == [(4,)]


def test_dlq_show_prints_markup_in_reasons_and_topics_as_text(pipeline: PipelineRun) -> None:
    """Issue 16, item 7: a reason is producer-controlled text; rich read it as markup, crashed
    on `[/x]` and dropped `[bold]`."""
    reason = "camera_id: [/x] not [bold]known[/bold]"
    letter = {**dead_letter("[red]camera.events", 0, 7, b"{}", reason), "received_at": None}
    pipeline.create_topics()
    pipeline.produce(topics.dead_letters_of(topics.CAMERA_EVENTS), [("k", orjson.dumps(letter))])
    pipeline.extra_env["COLUMNS"] = "200"  # one line per row
    shown = pipeline.vtops("dlq", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("[/x] not [bold]known[/bold]") == 2  # counted, then listed
    assert "[red]camera.events/0/7" in shown.stdout
