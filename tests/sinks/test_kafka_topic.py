"""The Kafka sinks send whole batches under the Faust producer: each keyed message must land on
the partition the producer's `send` would choose (the Java client's murmur2 of the key), in
order, and one over the producer's request size is refused as `send` refused it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.partitioner.default import murmur2

from sinks.base import Row
from sinks.exceptions import TransientSinkError
from sinks.kafka_topic import KafkaRecords
from tests.pipeline import BOOTSTRAP

PARTITIONS = 6


@pytest.fixture
def topic() -> Iterator[str]:
    name = f"test-sink-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


def _app(data_dir: Path) -> faust.App:
    """A Faust app for its producer, as the worker's (acks=all), its data under `data_dir`."""
    return faust.App(
        f"test-sink-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{BOOTSTRAP}",
        datadir=data_dir,
        web_enabled=False,
        producer_acks=-1,
    )


async def _send(app: faust.App, topic: str, batches: list[list[Row]], *, retry: bool) -> None:
    """`flush` each batch (retrying as the checkpoint does), or `write` it once."""
    await app.producer.start()
    try:
        sink = KafkaRecords(topic, app.producer)
        for batch in batches:
            await (sink.flush(batch) if retry else sink.write(batch))
    finally:
        await app.producer.stop()


def _read(topic: str, count: int) -> dict[int, list[tuple[bytes | None, bytes]]]:
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: dict[int, list[tuple[bytes | None, bytes]]] = {}
    try:
        while sum(len(records) for records in found.values()) < count:
            for tp, records in consumer.poll(timeout_ms=2000).items():
                found.setdefault(tp.partition, []).extend((r.key, r.value) for r in records)
    finally:
        consumer.close()
    return found


def test_keyed_messages_land_where_send_puts_them_in_order(topic: str, tmp_path: Path) -> None:
    keys = [f"phuong-{n % 17}|retail".encode() for n in range(300)]
    rows: list[Row] = [{"key": key, "value": b"%d" % n} for n, key in enumerate(keys)]
    # An explicit partition wins over the key (a router's watermarks), after its forwards.
    rows.append({"key": None, "value": b"mark", "partition": 4, "headers": [("vtops.m", b"")]})
    asyncio.run(_send(_app(tmp_path), topic, [rows[:150], rows[150:]], retry=True))

    found = _read(topic, len(rows))
    expected: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for key, row in zip(keys, rows, strict=False):
        partition = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        expected.setdefault(partition, []).append((key, row["value"]))
    expected.setdefault(4, []).append((None, b"mark"))
    assert found == expected


def test_a_message_over_the_request_size_is_refused_as_send_refused_it(
    topic: str, tmp_path: Path
) -> None:
    """The broker would refuse the whole batch; the producer's `send` refused the message."""
    rows: list[Row] = [{"key": b"a", "value": b"small"}, {"key": b"b", "value": b"x" * 2_000_000}]
    # `flush` would retry a transient error for ever.
    with pytest.raises(TransientSinkError, match="MessageSizeTooLargeError"):
        asyncio.run(_send(_app(tmp_path), topic, [rows], retry=False))
