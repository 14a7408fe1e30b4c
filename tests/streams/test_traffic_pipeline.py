"""camera.events through the real broker and worker into the embedded ClickHouse, exactly."""

from __future__ import annotations

import hashlib
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from city import topics
from schemas.dead_letter import (
    MAX_PAYLOAD_BYTES,
    original_headers,
    original_key,
    original_value,
)
from tests.brokers import own_broker
from tests.factories import (
    MINUTE_MS,
    T0,
    expected_from,
    passage,
    random_traffic,
    status,
    violation,
)
from tests.pipeline import VTOPS, PipelineRun
from vtops.kafka.offsets import remaining

pytestmark = pytest.mark.integration

FLOW_SQL = """
    SELECT camera_id, toUnixTimestamp(window_start), vehicles, motorbike, car, bus, truck,
           bicycle, other, pcu, avg_speed_kmh, violations, final
    FROM vtops.traffic_flow_1m FINAL"""

CAMERAS = [f"VT-CAM-{n:03d}" for n in (1, 2, 7, 40, 99, 150, 196)]

# (raw message, the field its dead letter must name)
INVALID: list[tuple[bytes, str]] = [
    (b"{not json", "payload"),
    (b"\xff\xfe\xfa", "payload"),
    (b"[1, 2, 3]", "payload"),
    (b'"just a string"', "payload"),
    (b"", "payload"),
    (b'{"event_id": "x" ' + b" " * 70_000 + b"}", "payload"),
    (orjson.dumps({**passage("bad-1", "VT-CAM-001", T0), "camera_id": "VT-CAM-197"}), "camera_id"),
    (orjson.dumps({**passage("bad-2", "VT-CAM-001", T0), "ts": "2024-09-14T07:00:00"}), "ts"),
    (orjson.dumps({**passage("bad-3", "VT-CAM-001", T0), "ts": True}), "ts"),
    (orjson.dumps({**passage("bad-4", "VT-CAM-001", T0), "ts": "yesterday"}), "ts"),
    (orjson.dumps({**passage("bad-5", "VT-CAM-001", T0), "kind": "drone"}), "kind"),
    (
        orjson.dumps({**passage("bad-6", "VT-CAM-001", T0), "vehicle_class": "tank"}),
        "vehicle_class",
    ),
    (orjson.dumps({**passage("bad-7", "VT-CAM-001", T0), "lane": 17}), "lane"),
    (orjson.dumps({**passage("bad-8", "VT-CAM-001", T0), "speed_kmh": 400}), "speed_kmh"),
    (orjson.dumps({**passage("bad-9", "VT-CAM-001", T0), "speed_kmh": "fast"}), "speed_kmh"),
    (orjson.dumps({**passage("bad-10", "VT-CAM-001", T0), "direction": "up"}), "direction"),
    (orjson.dumps({**passage("bad-11", "VT-CAM-001", T0), "plate": "7" * 17}), "plate"),
    (orjson.dumps({**passage("", "VT-CAM-001", T0)}), "event_id"),
    (
        orjson.dumps({k: v for k, v in passage("bad-13", "VT-CAM-001", T0).items() if k != "ts"}),
        "ts",
    ),
    (
        orjson.dumps({**violation("bad-14", "VT-CAM-001", T0), "violation_type": "jaywalking"}),
        "violation_type",
    ),
    (orjson.dumps({**status("bad-15", "VT-CAM-001", T0), "status": "asleep"}), "status"),
    (orjson.dumps({**passage("bad-16", "VT-CAM-001", T0), "vehicle_class": None}), "vehicle_class"),
]


def flow_rows(run: PipelineRun) -> dict[tuple[str, int], tuple[Any, ...]]:
    """Rows by (camera, minute), PCU and speed rounded as the expectations are (in Python:
    ClickHouse's round() breaks ties differently)."""
    return {
        (row[0], row[1]): (
            *row[2:9],
            round(row[9], 6),
            None if row[10] is None else round(row[10], 6),
            *row[11:],
        )
        for row in run.rows(FLOW_SQL)
    }


def test_duplicates_late_events_and_dead_letters_give_exact_rows(pipeline: PipelineRun) -> None:
    cam = "VT-CAM-001"
    events = [
        passage("a1", cam, T0 + 1_000, "motorbike", 30.0),
        passage("a2", cam, T0 + 2_000, "car", 50.0),
        passage("a3", cam, T0 + 3_000, "bus"),
        violation("a4", cam, T0 + 4_000, "red_light"),
        passage("a1", cam, T0 + 1_000, "motorbike", 30.0),  # duplicate
        violation("a4", cam, T0 + 4_000, "red_light"),  # duplicate violation
        status("s1", cam, T0 + 5_000, "degraded"),
        passage("b1", cam, T0 + MINUTE_MS + 10_000, "truck", 20.0),
        passage("c1", cam, T0 + 2 * MINUTE_MS + 30_000, "bicycle"),  # stream time 07:02:30
        passage("a5", cam, T0 + 59_000, "other", 40.0),  # late within grace: counted
        passage("d1", cam, T0 + 3 * MINUTE_MS + 10_000, "motorbike"),  # 07:03:10 closes 07:00
        passage("a6", cam, T0 + 30_000, "car"),  # beyond grace: dropped, counted late
        violation("a7", cam, T0 + 31_000, "no_helmet"),  # late violation: recorded, not counted
        passage("z1", "VT-CAM-002", T0 + 5_000, "car", 60.0),
    ]
    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", events)
    pipeline.produce(topics.CAMERA_EVENTS, (("VT-CAM-001", raw) for raw, _ in INVALID))
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0

    t0 = T0 // 1000
    assert flow_rows(pipeline) == {
        # vehicles, motorbike, car, bus, truck, bicycle, other, pcu, avg speed, violations, final
        (cam, t0): (4, 1, 1, 1, 0, 0, 1, 4.8, 40.0, 1, 1),
        (cam, t0 + 60): (1, 0, 0, 0, 1, 0, 0, 2.5, 20.0, 0, 0),
        (cam, t0 + 120): (1, 0, 0, 0, 0, 1, 0, 0.2, None, 0, 0),
        (cam, t0 + 180): (1, 1, 0, 0, 0, 0, 0, 0.3, None, 0, 0),
        ("VT-CAM-002", t0): (1, 0, 1, 0, 0, 0, 0, 1.0, 60.0, 0, 0),
    }
    assert pipeline.rows(
        "SELECT event_id, ward, violation_type, plate FROM vtops.traffic_violations "
        "FINAL ORDER BY event_id"
    ) == [
        ("a4", "phuong-1", "red_light", "72A-123.45"),
        ("a7", "phuong-1", "no_helmet", "72A-123.45"),
    ]
    assert pipeline.rows("SELECT camera_id, status FROM vtops.camera_status FINAL") == [
        (cam, "degraded")
    ]
    letters = pipeline.rows(
        "SELECT offset, error, payload FROM vtops.dlq_events FINAL ORDER BY offset"
    )
    assert len(letters) == len(INVALID)
    for (raw, field), (_, error, payload) in zip(INVALID, letters, strict=True):
        assert error.startswith(f"{field}:"), (field, error)
        if raw[:1] != b"\xff":
            assert payload == raw[:MAX_PAYLOAD_BYTES].decode()
    progress = pipeline.rows("""
        SELECT sum(late), sum(duplicates), sum(invalid) FROM (
            SELECT partition, argMax(late, offset) AS late,
                   argMax(duplicates, offset) AS duplicates,
                   argMax(invalid, offset) AS invalid
            FROM vtops.pipeline_progress FINAL GROUP BY partition)""")
    assert progress == [(2, 2, len(INVALID))]


def test_dead_letters_reach_the_dlq_topic_with_the_contract_fields(pipeline: PipelineRun) -> None:
    from kafka import KafkaConsumer

    worker = pipeline.start_worker()
    pipeline.produce(topics.CAMERA_EVENTS, [("VT-CAM-001", b"\xff\x00bad"), ("VT-CAM-001", b"{}")])
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0
    consumer = KafkaConsumer(
        pipeline.topic(topics.dead_letters_of(topics.CAMERA_EVENTS)),
        bootstrap_servers="127.0.0.1:9092",
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    letters = sorted((orjson.loads(m.value) for m in consumer), key=lambda d: d["offset"])
    consumer.close()
    assert [letter["payload_encoding"] for letter in letters[:1]] == ["base64"]
    assert letters[0]["payload"] == "/wBiYWQ="
    assert letters[1]["payload"] == "{}" and letters[1]["error"].startswith("kind:")
    for letter in letters:
        assert {"source_topic", "partition", "offset", "error", "payload", "received_at"} <= set(
            letter
        )
        assert letter["source_topic"] == pipeline.topic(topics.CAMERA_EVENTS)


def test_a_dead_letter_keeps_the_original_key_headers_and_timestamp(pipeline: PipelineRun) -> None:
    """What `vtops dlq redrive` needs to send a fixed message back where it came from: the DLQ
    message is keyed by the original key, and the letter and its `dlq_events` row give back the
    key, headers, timestamp and value. A key of 200 KB of control bytes (1.2 MB as JSON) is not
    kept, only its length: the letter still fits in a Kafka message and the stream goes on."""
    from kafka import KafkaConsumer, KafkaProducer

    sent = [  # (key, value, headers, timestamp)
        (b"VT-CAM-001", b'{"kind": "nope"}', [("traceparent", b"00-ab-01"), ("x", b"")], T0),
        (b"\xff\xfeVT", b"\xff\x00bad", [("bin", b"\x00\xff"), ("bin", b"2")], T0 + 1),
        (b"VT-CAM-002", b"{}", [], T0 + 2),
    ]
    producer = KafkaProducer(bootstrap_servers=pipeline.env["VTOPS_KAFKA_BOOTSTRAP"], acks="all")
    too_long = b"\x01" * 200_000
    producer.send(pipeline.topic(topics.CAMERA_EVENTS), key=too_long, value=b"{}")
    for key, value, headers, timestamp in sent:
        producer.send(
            pipeline.topic(topics.CAMERA_EVENTS),
            key=key,
            value=value,
            headers=headers,
            timestamp_ms=timestamp,
        )
    producer.flush()
    producer.close()
    worker = pipeline.start_worker()
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0

    consumer = KafkaConsumer(
        pipeline.topic(topics.dead_letters_of(topics.CAMERA_EVENTS)),
        bootstrap_servers=pipeline.env["VTOPS_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    messages = list(consumer)
    consumer.close()
    assert len(messages) == len(sent) + 1
    with pipeline.store() as client:
        rows = list(client.query("SELECT * FROM vtops.dlq_events FINAL").named_results())
    for message in messages:
        letter = orjson.loads(message.value)
        if letter["origin_bytes"] is None:
            assert message.key == original_key(letter)
        else:
            assert letter["origin_bytes"] == len(too_long) and message.key is None
    for letters in ([orjson.loads(m.value) for m in messages], rows):
        (dropped,) = [letter for letter in letters if letter["origin_bytes"] is not None]
        letters.remove(dropped)
        with pytest.raises(ValueError, match="key, headers: 200000 bytes"):
            original_key(dropped)
        returned = {
            (
                original_key(letter),
                original_value(letter),
                tuple(original_headers(letter)),
                letter["timestamp"],
            )
            for letter in letters
        }
        assert returned == {(k, v, tuple(h), t) for k, v, h, t in sent}


def test_a_dead_letter_of_any_size_fits_in_a_kafka_message(pipeline: PipelineRun) -> None:
    """200 KB of control bytes JSON-escape to 1.2 MB, over the broker's message limit: the
    dead letter keeps the start, the length and a digest, and the stream goes on."""
    from kafka import KafkaConsumer

    poison = b"\x01" * 200_000
    before = [passage(f"b{n}", "VT-CAM-001", T0 + n * 1000) for n in range(10)]
    after = [passage(f"a{n}", "VT-CAM-001", T0 + 20_000 + n * 1000) for n in range(10)]
    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", before)
    pipeline.produce(topics.CAMERA_EVENTS, [("VT-CAM-001", poison)])
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", after)
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=60)
    assert pipeline.stop_worker(worker) == 0
    assert pipeline.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL") == [(20,)]
    consumer = KafkaConsumer(
        pipeline.topic(topics.dead_letters_of(topics.CAMERA_EVENTS)),
        bootstrap_servers="127.0.0.1:9092",
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    (letter,) = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    assert letter["error"] == "payload: 200000 bytes is over the 64 KiB limit"
    assert letter["payload_bytes"] == 200_000
    assert letter["payload_sha256"] == hashlib.sha256(poison).hexdigest()
    assert letter["payload"] == "\x01" * 16 * 1024


def test_batches_in_every_codec_kafka_knows_are_read_by_the_worker_and_the_archive(
    pipeline: PipelineRun, tmp_path: Path
) -> None:
    """A Java or librdkafka producer may compress with any of them (lz4 and zstd are common
    defaults); a codec the worker lacks stopped it with UnsupportedCodecError on every start."""
    codecs = ("gzip", "snappy", "lz4", "zstd")
    events = random_traffic(random.Random(5), CAMERAS, minutes=8, count=2_000, duplicate_share=0)
    step = len(events) // len(codecs)
    for n, codec in enumerate(codecs):
        chunk = events[n * step : (n + 1) * step]
        pipeline.produce(
            topics.CAMERA_EVENTS, ((e["camera_id"], orjson.dumps(e)) for e in chunk), codec
        )
    worker = pipeline.start_worker()
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0
    assert flow_rows(pipeline) == expected_from(events, pipeline.partitions).rows()

    archive = tmp_path / "codecs.parquet"
    exported = pipeline.vtops(
        "archive", "export", "--streams", "traffic", "--from", "2000-01-01T00:00:00Z",
        "--to", "2100-01-01T00:00:00Z", "--clock", "kafka", "--out", str(archive),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert pq.ParquetFile(archive).metadata.num_rows == len(events)


def test_sigkill_and_restarts_mid_stream_keep_results_exact(pipeline: PipelineRun) -> None:
    rng = random.Random(7)
    events = random_traffic(rng, CAMERAS, minutes=30, count=24_000)
    step = len(events) // 4
    expected = expected_from(events, pipeline.partitions)
    for n in range(4):
        pipeline.produce_events(
            topics.CAMERA_EVENTS,
            "camera_id",
            events[n * step : len(events) if n == 3 else (n + 1) * step],
        )
        worker = pipeline.start_worker()
        if n < 3:
            # Mid-stream: after a first checkpoint, while the rest of the chunk is in flight.
            pipeline.wait_for_progress(topics.CAMERA_EVENTS)
            time.sleep(rng.uniform(0.0, 0.5))
            pipeline.stop_worker(worker, signal.SIGKILL)
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=180)
    assert pipeline.stop_worker(worker) == 0

    assert flow_rows(pipeline) == expected.rows()
    assert {r[0] for r in pipeline.rows("SELECT event_id FROM vtops.traffic_violations FINAL")} == (
        expected.violations
    )
    late = pipeline.rows(
        "SELECT sum(l) FROM (SELECT argMax(late, offset) AS l "
        "FROM vtops.pipeline_progress FINAL GROUP BY partition)"
    )
    assert late == [(expected.late,)]


def test_ten_thousand_malformed_messages_amid_traffic_lose_nothing(pipeline: PipelineRun) -> None:
    rng = random.Random(11)
    valid = random_traffic(rng, CAMERAS, minutes=10, count=5_000, duplicate_share=0.0)
    messages: list[tuple[str, bytes | None]] = []
    fields: list[str] = []
    for n, event in enumerate(valid):
        messages.append((event["camera_id"], orjson.dumps(event)))
        for _ in range(2):
            raw, field = INVALID[(n + len(fields)) % len(INVALID)]
            messages.append((rng.choice(CAMERAS), raw))
            fields.append(field)
    worker = pipeline.start_worker()
    pipeline.produce(topics.CAMERA_EVENTS, messages)
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=180)
    assert pipeline.stop_worker(worker) == 0

    assert flow_rows(pipeline) == expected_from(valid, pipeline.partitions).rows()
    by_field = pipeline.rows(
        "SELECT splitByChar(':', error)[1] AS field, count() "
        "FROM vtops.dlq_events FINAL GROUP BY field ORDER BY field"
    )
    assert len(fields) == 10_000
    assert by_field == sorted((f, fields.count(f)) for f in set(fields))


def test_broker_down_for_30_seconds_mid_run_the_worker_recovers_exactly(
    tmp_path: Path,
) -> None:
    """On a broker of its own: stopping the session's would fail the tests beside it."""
    broker = own_broker(tmp_path)  # at tmp_path/kafka, beside the run's store
    broker.start()
    try:
        pipeline = PipelineRun(data_dir=tmp_path, bootstrap=broker.kafka.kafka_bootstrap)
        pipeline.create_topics()
        rng = random.Random(5)
        events = random_traffic(rng, CAMERAS, minutes=20, count=12_000)
        half = len(events) // 2
        worker = pipeline.start_worker()
        pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", events[:half])
        pipeline.wait_for_progress(topics.CAMERA_EVENTS)
        broker.stop()
        try:
            time.sleep(30)
            assert worker.poll() is None, "the worker must ride out the outage"
        finally:
            broker.start()
        pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", events[half:])
        pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=180)
        assert pipeline.stop_worker(worker) == 0
    finally:
        broker.stop()

    expected = expected_from(events, pipeline.partitions)
    assert flow_rows(pipeline) == expected.rows()


def test_a_store_that_refuses_rows_for_good_stops_the_worker_with_an_error(
    pipeline: PipelineRun,
) -> None:
    """A terminal sink error (here a table whose columns do not match) is no reason to retry
    forever or to hang: the worker exits 1, saying why, and commits nothing it did not save."""
    with pipeline.store() as client:
        client.command("CREATE DATABASE vtops")
        # The counts the migrations widen are there, so the store gets prepared; the rows the
        # worker writes still cannot land (no window_start, a stray lane_closures).
        counts = ", ".join(
            f"{name} UInt32"
            for name in ("vehicles", "motorbike", "car", "bus", "truck", "bicycle", "other")
        )
        client.command(
            f"CREATE TABLE vtops.traffic_flow_1m (camera_id String, {counts}, "
            "violations UInt32, lane_closures UInt8) ENGINE = MergeTree ORDER BY ()"
        )
    worker = pipeline.start_worker()
    pipeline.wait_until_assigned(worker)
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", [passage("a", CAMERAS[0], T0)])
    try:
        assert worker.wait(timeout=60) == 1
    finally:
        worker.kill()
    assert remaining(pipeline.kafka_settings, pipeline.topic(topics.CAMERA_EVENTS)) == 1


def test_a_second_worker_with_its_own_embedded_store_refuses_to_join(
    pipeline: PipelineRun, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two embedded stores would split the state; the survivor of the two would then take
    over partitions without theirs. The second worker says so and exits 1; the first goes on."""
    first = pipeline.start_worker()
    pipeline.wait_until_assigned(first)
    second = subprocess.run(
        [VTOPS, "worker"],
        env={**pipeline.env, "VTOPS_DATA_DIR": str(tmp_path_factory.mktemp("second"))},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "several workers need a ClickHouse server" in second.stderr
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", [passage("x", CAMERAS[0], T0)])
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(first) == 0
    assert pipeline.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL") == [(1,)]


def test_a_store_removed_under_a_running_worker_stops_it_and_a_restart_rebuilds_it(
    pipeline: PipelineRun,
) -> None:
    """The embedded store's directory deleted while the worker runs: it stops with exit 1
    before committing what it could not save, and the next worker, finding no state, reads
    the topic from its beginning."""
    camera = pipeline.topic(topics.CAMERA_EVENTS)
    worker = pipeline.start_worker()
    pipeline.wait_until_assigned(worker)
    pipeline.produce_events(
        topics.CAMERA_EVENTS, "camera_id", [passage(f"a{n}", CAMERAS[0], T0 + n) for n in range(10)]
    )
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    shutil.rmtree(pipeline.data_dir / "clickhouse")
    pipeline.produce_events(
        topics.CAMERA_EVENTS, "camera_id", [passage(f"b{n}", CAMERAS[0], T0 + n) for n in range(10)]
    )
    try:
        assert worker.wait(timeout=60) == 1
    finally:
        worker.kill()
    assert remaining(pipeline.kafka_settings, camera) == 10
    worker = pipeline.start_worker()
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0
    assert pipeline.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL") == [(20,)]
