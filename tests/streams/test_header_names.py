"""A header name that is not UTF-8, through the real broker and worker (issue 16).

aiokafka raised UnicodeDecodeError out of `getmany` on such a record: the worker exited 1, and
again on every restart, and nothing behind it was ever read."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaProducer

from city import topics
from tests.factories import T0, passage
from tests.pipeline import PipelineRun
from tests.raw_headers import RawName
from vtops.kafka.offsets import remaining

pytestmark = pytest.mark.integration

CAMERAS = [f"VT-CAM-{n:03d}" for n in (1, 2, 7, 40, 99, 150)]


def test_a_header_name_that_is_not_utf8_is_one_dead_letter_and_stops_nothing(
    pipeline: PipelineRun,
) -> None:
    worker = pipeline.start_worker()
    pipeline.wait_until_assigned(worker)
    # One flush with a linger: the bad record shares its record batch with valid passages
    # before and after it, and the fetch with the other partitions' passages.
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=200)
    topic = pipeline.topic(topics.CAMERA_EVENTS)
    valid = 0
    for n in range(20):
        for camera in CAMERAS:
            event = passage(f"{camera}-{n}", camera, T0 + n * 1_000)
            producer.send(topic, key=camera.encode(), value=orjson.dumps(event))
            valid += 1
        if n == 10:
            hidden = passage("hidden", CAMERAS[0], T0 + n * 1_000)
            headers = [("traceparent", b"00"), (RawName(b"\xff\xfe"), b"secret")]
            producer.send(
                topic, key=CAMERAS[0].encode(), value=orjson.dumps(hidden), headers=headers
            )
    producer.flush()
    producer.close()

    deadline = time.monotonic() + 60
    while remaining(pipeline.kafka_settings, topic):
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        assert time.monotonic() < deadline, "camera.events not consumed within 60 s"
        time.sleep(0.1)
    assert pipeline.stop_worker(worker) == 0

    (vehicles,) = pipeline.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL")[0]
    assert vehicles == valid
    letters = pipeline.rows("SELECT error, headers FROM vtops.dlq_events FINAL")
    assert letters == [
        (
            "headers: the name of header 2 is not UTF-8",
            [("traceparent", "MDA="), ("\\xff\\xfe", "c2VjcmV0")],
        )
    ]
