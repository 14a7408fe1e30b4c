"""`vtops archive export|import`: a stretch of the input topics to Parquet and into another
environment's topics, where the worker computes the same tables."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from city import topics
from city.kafka_client import admin_client
from city.profile import load_city_profile
from streams.app import consumed_topics
from streams.settings import StreamSettings
from tests.factories import random_traffic
from tests.factories_payments import MINUTE_MS, random_tallies
from tests.factories_portal import at, random_dossiers
from tests.pipeline import PipelineRun
from tests.streams.test_payments_pipeline import CASHLESS_SQL, KPIS_SQL
from tests.streams.test_traffic_pipeline import CAMERAS, flow_rows
from vtops.kafka.offsets import wait_until_consumed
from vtops.replay.archive import SCHEMA
from vtops.replay.positions import records_between, retained_ranges

pytestmark = pytest.mark.integration

INPUTS = (topics.CAMERA_EVENTS, topics.PAYMENT_COUNTS, topics.PORTAL_TRANSACTIONS)
KEYS = {
    topics.CAMERA_EVENTS: "camera_id",
    topics.PAYMENT_COUNTS: "terminal_id",
    topics.PORTAL_TRANSACTIONS: "dossier_id",
}


def run_worker(run: PipelineRun) -> None:
    worker = run.start_worker()
    every = consumed_topics(run.kafka_settings, StreamSettings(), load_city_profile())
    wait_until_consumed(run.kafka_settings, every, 120)
    assert run.stop_worker(worker) == 0


def messages(run: PipelineRun, topic: str) -> list[tuple[Any, ...]]:
    """(partition, key, value, timestamp, headers) of every message, in partition order; read
    up to the end offsets, so no wait for silence."""
    ranges = retained_ranges(run.kafka_settings, [run.topic(topic)])
    return [
        (m.partition, m.key, m.value, m.timestamp, tuple(m.headers))
        for tp in sorted(ranges.end)
        for m in records_between(run.kafka_settings, tp, ranges.beginning[tp], ranges.end[tp])
    ]


def held(run: PipelineRun, topic: str) -> int:
    """How many messages the topic holds."""
    ranges = retained_ranges(run.kafka_settings, [run.topic(topic)])
    return sum(ranges.end[tp] - ranges.beginning[tp] for tp in ranges.end)


def tables(run: PipelineRun) -> tuple[Any, ...]:
    return (
        flow_rows(run),
        sorted(run.rows(CASHLESS_SQL)),
        sorted(run.rows(KPIS_SQL)),
        run.rows("SELECT source_topic, count() FROM vtops.dlq_events FINAL GROUP BY 1"),
    )


def test_an_archive_replayed_into_fresh_topics_gives_the_same_tables(
    pipeline: PipelineRun, tmp_path: Path
) -> None:
    rng = random.Random(9)
    events = {
        topics.CAMERA_EVENTS: random_traffic(rng, CAMERAS, minutes=12, count=3_000),
        topics.PAYMENT_COUNTS: random_tallies(rng, 600, span_ms=74 * MINUTE_MS),
        topics.PORTAL_TRANSACTIONS: random_dossiers(
            rng, 150, at("2024-09-14T06:00:00+07:00"), 10 * 3_600_000
        ),
    }
    pipeline.produce(topics.CAMERA_EVENTS, [("VT-CAM-001", b"before --from")])
    time.sleep(0.5)
    since = datetime.now(UTC)
    for topic, batch in events.items():
        pipeline.produce_events(topic, KEYS[topic], batch)
    pipeline.produce(topics.CAMERA_EVENTS, [("VT-CAM-002", b"\xff bad")])
    pipeline.produce(topics.PORTAL_TRANSACTIONS, [("D-1", b'{"dossier_id": 7}')])
    time.sleep(0.5)
    until = datetime.now(UTC)
    run_worker(pipeline)
    original = tables(pipeline)
    time.sleep(0.5)
    pipeline.produce(topics.CAMERA_EVENTS, [("VT-CAM-001", b"after --to")])

    archive = tmp_path / "city.parquet"
    exported = pipeline.vtops(
        "archive",
        "export",
        "--from",
        since.isoformat(),
        "--to",
        until.isoformat(),
        "--out",
        str(archive),
        "--clock",
        "kafka",
    )
    assert exported.returncode == 0, exported.stderr
    file = pq.ParquetFile(archive)
    assert file.metadata.num_rows == sum(len(b) for b in events.values()) + 2
    assert file.metadata.row_group(0).column(5).compression == "ZSTD"

    (tmp_path / "fresh").mkdir()
    fresh = PipelineRun(data_dir=tmp_path / "fresh", partitions=pipeline.partitions)
    fresh.create_topics()
    imported = fresh.vtops("archive", "import", str(archive), "--yes")
    assert imported.returncode == 0, imported.stderr
    # Keys, values, headers, timestamps and partitions came across as they were.
    for topic in INPUTS:
        kept = [m for m in messages(pipeline, topic) if b"--" not in m[2]]
        assert sorted(messages(fresh, topic)) == sorted(kept)

    run_worker(fresh)
    replayed = tables(fresh)
    assert len(replayed[0]) > 50 and replayed[1] and replayed[2]
    assert replayed[:3] == original[:3]
    # The message before --from was a dead letter of the original run only.
    camera_dlq = pipeline.topic(topics.CAMERA_EVENTS)
    assert dict(original[3])[camera_dlq] == 2
    assert dict(replayed[3])[fresh.topic(topics.CAMERA_EVENTS)] == 1


def write_archive_file(
    path: Path, messages: dict[tuple[str, int], list[tuple[int, bytes]]]
) -> None:
    """An archive as `vtops archive export` lays it out: (contract topic, partition) →
    (timestamp, value) in offset order, each partition in row groups of its own."""
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for (topic, partition), rows in messages.items():
            columns = {
                "topic": [topic] * len(rows),
                "partition": [partition] * len(rows),
                "offset": list(range(len(rows))),
                "timestamp": [ts for ts, _ in rows],
                "key": [b"VT-CAM-001"] * len(rows),
                "value": [value for _, value in rows],
                "headers": [[]] * len(rows),
            }
            writer.write_table(pa.Table.from_pydict(columns, schema=SCHEMA))


def test_an_import_refuses_what_the_broker_would_delete_or_create_and_other_topics(
    pipeline: PipelineRun, tmp_path: Path
) -> None:
    """Issues 15 and 16: 200 messages imported with 30-day-old timestamps were deleted by the
    broker 45 s later, silently; an import wrote any topic a file named, creating missing ones."""
    month_ago = int(time.time() * 1000) - 30 * 86_400_000
    old = tmp_path / "old.parquet"
    write_archive_file(
        old, {(topics.CAMERA_EVENTS, 0): [(month_ago + n, b"{}") for n in range(20)]}
    )
    refused = pipeline.vtops("archive", "import", str(old), "--yes")
    assert refused.returncode == 1
    # Read from the broker's topic config: the input topics keep 14 days by default.
    assert re.search(
        r"keeps messages 14 days by timestamp \(retention.ms=1209600000\)", refused.stderr
    )
    assert "--restamp" in refused.stderr
    assert held(pipeline, topics.CAMERA_EVENTS) == 0

    sending = time.time() * 1000
    restamped = pipeline.vtops("archive", "import", str(old), "--restamp", "--yes")
    assert restamped.returncode == 0, restamped.stderr
    sent = messages(pipeline, topics.CAMERA_EVENTS)
    assert [m[4] for m in sent] == [
        (("vtops.original-timestamp", str(month_ago + n).encode()),) for n in range(20)
    ]
    assert all(m[3] >= sending - 1000 for m in sent)

    forged = tmp_path / "forged.parquet"
    write_archive_file(
        forged,
        {
            (topics.CAMERA_EVENTS, 0): [(month_ago, b"{}")],
            (topics.TRAFFIC_FLOW_1M, 0): [(month_ago, b"{}")],
            (topics.dead_letters_of(topics.CAMERA_EVENTS), 0): [(month_ago, b"{}")],
            ("parking.events", 0): [(month_ago, b"{}")],
        },
    )
    dry = pipeline.vtops("archive", "import", str(forged), "--restamp", "--dry-run")
    assert dry.returncode == 1
    for refusal in (
        "traffic.flow-1m: not an input topic of the contract",
        "camera.events.dlq: not an input topic of the contract",
        "parking.events: not an input topic of the contract",
        f"{pipeline.topic('parking.events')}: no such topic here",
    ):
        assert refusal in dry.stderr.replace("\n", " ")
    with admin_client(pipeline.kafka_settings) as admin:
        assert pipeline.topic("parking.events") not in admin.list_topics()
    assert held(pipeline, topics.CAMERA_EVENTS) == 20
