"""`vtops worker --log-format json`: the text lines' key=value fields as JSON keys."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import orjson
import pytest

from tests.pipeline import VTOPS, PipelineRun
from vtops.log_format import JsonFormatter, fields_of


def test_fields_keep_their_types_and_leave_the_record_keys_alone() -> None:
    assert fields_of('assigned topic=camera.events partition=3 load_s=0.25 level=x note="a b"') == {
        "topic": "camera.events",
        "partition": 3,
        "load_s": 0.25,
        "note": "a b",
    }
    assert fields_of("nothing to see here") == {}


def test_a_record_becomes_one_json_line_with_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "streams.engine",
            logging.ERROR,
            __file__,
            1,
            "sink=%s rows=%d",
            ("dlq", 7),
            sys.exc_info(),
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = orjson.loads(line)
    assert parsed["level"] == "error" and parsed["logger"] == "streams.engine"
    assert parsed["message"] == "sink=dlq rows=7"
    assert (parsed["sink"], parsed["rows"]) == ("dlq", 7)
    assert parsed["ts"].endswith("+00:00") and "ValueError: boom" in parsed["exc"]


@pytest.mark.integration
def test_a_worker_logs_json_lines(pipeline: PipelineRun) -> None:
    log_path = pipeline.data_dir / "worker-json.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [VTOPS, "worker", "--loglevel", "info", "--log-format", "json"],
            env=pipeline.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while b"assigned partitions=" not in log_path.read_bytes():
        assert worker.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "worker not assigned within 60 s"
        time.sleep(0.1)
    assert pipeline.stop_worker(worker) == 0
    lines = [orjson.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assigned = [line for line in lines if line["message"].startswith("assigned partitions=")]
    assert len(assigned) == 1
    assert assigned[0]["logger"] == "streams.engine.service" and assigned[0]["level"] == "info"
    # One line per partition a stage loaded, with the partition as a number.
    per_topic = [line for line in lines if line["message"].startswith("assigned topic=")]
    assert assigned[0]["partitions"] == len(per_topic)
    assert {line["partition"] for line in per_topic} == set(range(pipeline.partitions))
    assert any(line["message"] == "shutdown checkpoint written" for line in lines)
