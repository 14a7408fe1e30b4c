"""The bounded reader against the real broker: every record of a range once, and a range the
topic does not hold refused before any poll, however long the reader would wait."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from city.settings import KafkaSettings
from streams.app import aiokafka_config
from streams.engine.reader import BoundedReader, Range, RangeNotRetained


@pytest.fixture
def topic(broker: str) -> str:
    """Two partitions: ten messages on partition 0, four on partition 1."""
    name = f"reader-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker)
    for partition, count in ((0, 10), (1, 4)):
        for n in range(count):
            producer.send(name, value=f"{partition}:{n}".encode(), partition=partition)
    producer.flush()
    producer.close()
    return name


def read(broker: str, ranges: dict[TopicPartition, Range]) -> dict[int, list[int]]:
    """The offsets read of each partition, in the order read; a stall waits a minute."""

    async def run() -> dict[int, list[int]]:
        config = aiokafka_config(KafkaSettings(kafka_bootstrap=broker))
        found: dict[int, list[int]] = {}
        async with BoundedReader(config, batch=3, stall_s=60) as reader:
            async for tp, records in reader.read(ranges):
                found.setdefault(tp.partition, []).extend(r.offset for r in records)
        return found

    return asyncio.run(run())


def test_every_record_of_each_range_is_read_once_in_order(broker: str, topic: str) -> None:
    ranges = {TopicPartition(topic, 0): (3, 8), TopicPartition(topic, 1): (0, 4)}
    assert read(broker, ranges) == {0: [3, 4, 5, 6, 7], 1: [0, 1, 2, 3]}


def test_a_range_past_the_end_is_refused_with_what_is_retained(broker: str, topic: str) -> None:
    """End offsets decide, before any poll: the old readers polled an absent stretch until N
    empty polls in a row (10 to 30 s); this reader would wait a minute for a stall."""
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with pytest.raises(
        RangeNotRetained, match=r"partition 0: offsets 5\.\.11 asked, 5\.\.9"
    ) as gone:
        read(broker, {tp0: (5, 12), tp1: (0, 4)})
    assert gone.value.retained == {tp0: (5, 10), tp1: (0, 4)}


def test_a_range_retention_cuts_while_it_is_read_is_refused(broker: str) -> None:
    """aiokafka's default reset would move the reader to the end: a short read, no error."""
    name = f"reader-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=0, batch_size=1)
    for n in range(200):
        producer.send(name, value=b"%d" % n, partition=0).get()
    producer.close()
    tp = TopicPartition(name, 0)

    async def run() -> list[int]:
        # A fetch of about one record batch at a time, so most of the range is read after the cut.
        config = {**aiokafka_config(KafkaSettings(kafka_bootstrap=broker)),
                  "max_partition_fetch_bytes": 1}  # fmt: skip
        offsets: list[int] = []
        async with BoundedReader(config, batch=5, stall_s=60) as reader:
            async for _, records in reader.read({tp: (0, 200)}):
                offsets.extend(r.offset for r in records)
                if len(offsets) == 5:
                    admin.delete_records({tp: 150})  # as retention does
        return offsets

    try:
        with pytest.raises(RangeNotRetained, match=r"offsets 0\.\.199 asked, 150\.\.199"):
            asyncio.run(run())
    finally:
        admin.close()
