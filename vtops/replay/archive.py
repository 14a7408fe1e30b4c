"""Archives of the input topics: messages between two times to a Parquet file (zstd) and back.

A row is one message as the broker held it: the contract topic (without the run's prefix, so an
archive loads into any environment), partition, offset, timestamp, key, value and headers.
Import sends each message to the topic of the same contract name in the configured environment
with its key (so the default partitioner puts it on the partition of the same number when the
topic has as many partitions: dedup and lateness stay per partition) and its timestamp.

Import order: by timestamp across partitions, paced by it (`speedup`) or not, but never
reordering one partition: a message goes no earlier than those before it on its partition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from city.kafka_client import kafka_python_config
from city.settings import KafkaSettings
from streams.app import aiokafka_config
from vtops.kafka.topics import ensure_topics
from vtops.replay.exceptions import ReplayError
from vtops.replay.positions import offsets_at, records_between, retained_ranges
from vtops.replay.selection import StreamTopics

SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("headers", pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))),
    ],
    metadata={"vtops.archive": "1"},
)
_ROW_GROUP = 100_000

Progress = Callable[[int], None]


@dataclass
class ArchiveCounts:
    """Messages per contract topic."""

    by_topic: dict[str, int] = field(default_factory=dict)

    def add(self, topic: str, n: int) -> None:
        self.by_topic[topic] = self.by_topic.get(topic, 0) + n

    @property
    def total(self) -> int:
        return sum(self.by_topic.values())


def export_archive(
    kafka: KafkaSettings,
    streams: list[StreamTopics],
    from_ms: int,
    to_ms: int,
    out: Path,
    progress: Progress | None = None,
) -> ArchiveCounts:
    """Write every message of the streams' input topics from the first at or after `from_ms`
    up to the first at or after `to_ms` (as `kafka-consumer-groups --to-datetime` counts)."""
    if to_ms <= from_ms:
        raise ReplayError("--to: must be after --from")
    contract = {s.source: s.stream.source_topic for s in streams}
    ranges = retained_ranges(kafka, list(contract))
    tps = sorted(ranges.end)
    starts, stops = offsets_at(kafka, tps, from_ms), offsets_at(kafka, tps, to_ms)
    counts = ArchiveCounts()
    consumer = KafkaConsumer(**kafka_python_config(kafka), enable_auto_commit=False)
    try:
        with pq.ParquetWriter(out, SCHEMA, compression="zstd") as writer:
            for tp in tps:
                start, stop = starts[tp], stops[tp]
                if stop is None:
                    stop = ranges.end[tp]
                if start is None or start >= stop:
                    continue
                for rows in _row_groups(consumer, tp, start, stop, contract[tp.topic]):
                    writer.write_table(pa.Table.from_pydict(rows, schema=SCHEMA))
                    counts.add(contract[tp.topic], len(rows["offset"]))
                    if progress is not None:
                        progress(len(rows["offset"]))
    finally:
        consumer.close()
    return counts


def _row_groups(
    consumer: KafkaConsumer, tp: TopicPartition, start: int, stop: int, topic: str
) -> Iterator[dict[str, list[Any]]]:
    rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for record in records_between(consumer, tp, start, stop):
        rows["topic"].append(topic)
        rows["partition"].append(tp.partition)
        rows["offset"].append(record.offset)
        rows["timestamp"].append(record.timestamp)
        rows["key"].append(record.key)
        rows["value"].append(record.value)
        rows["headers"].append([{"key": k, "value": v} for k, v in record.headers or ()])
        if len(rows["offset"]) >= _ROW_GROUP:
            yield rows
            rows = {name: [] for name in SCHEMA.names}
    if rows["offset"]:
        yield rows


def _read(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise ReplayError(f"{path}: not a readable Parquet file ({error})") from None
    missing = [f.name for f in SCHEMA if f.name not in table.schema.names]
    if missing:
        raise ReplayError(f"{path}: not a vtops archive: no column {missing[0]!r}")
    return table.select(SCHEMA.names).cast(SCHEMA)


def send_order(table: pa.Table) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(row order, due time in ms per row in that order): by timestamp, except that a message
    is due no earlier than those before it on its partition (the running maximum)."""
    stamps = table["timestamp"].cast(pa.int64()).fill_null(0).to_numpy().copy()
    topics = table["topic"].to_numpy(zero_copy_only=False)
    partitions = table["partition"].to_numpy()
    # Rows of one partition sit together in offset order, as export writes them.
    cuts = np.flatnonzero((topics[1:] != topics[:-1]) | (partitions[1:] != partitions[:-1])) + 1
    for segment in np.split(np.arange(len(stamps)), cuts):
        if len(segment):
            stamps[segment] = np.maximum.accumulate(stamps[segment])
    order = np.argsort(stamps, kind="stable")
    return order, stamps[order]


def import_archive(
    kafka: KafkaSettings,
    path: Path,
    speedup: float | None,
    progress: Progress | None = None,
) -> ArchiveCounts:
    """Send the archive's messages to this environment's topics; `speedup` None: unpaced."""
    if speedup is not None and speedup <= 0:
        raise ReplayError("--speedup: must be above 0")
    table = _read(path)
    ensure_topics(kafka)
    order, due_ms = send_order(table)
    return asyncio.run(_Sender(kafka, table, progress).send(order, due_ms, speedup))


class _Sender:
    """Sends rows whole batches at a time (aiokafka's batch builder): a message costs an
    append, where a producer's `send` costs tens of microseconds of Python. Batches fill per
    partition in send order; paced, every pending batch goes out before each wait."""

    def __init__(self, kafka: KafkaSettings, table: pa.Table, progress: Progress | None) -> None:
        self._kafka = kafka
        self._columns = {n: table[n].to_pylist() for n in ("topic", "key", "value", "headers")}
        self._stamps = table["timestamp"].cast(pa.int64()).to_pylist()
        self._progress = progress
        self._partitions: dict[str, list[int]] = {}
        # The default partitioner's choice (murmur2 of the key, as the Java client), per key:
        # an archive repeats a few thousand keys a million times.
        self._by_key: dict[tuple[str, bytes], int] = {}
        self._keyless = 0

    async def send(
        self, order: np.ndarray[Any, Any], due_ms: np.ndarray[Any, Any], speedup: float | None
    ) -> ArchiveCounts:
        producer = AIOKafkaProducer(
            **aiokafka_config(self._kafka), acks="all", max_batch_size=1024 * 1024
        )
        await producer.start()
        counts = ArchiveCounts()
        pending: dict[tuple[str, int], Any] = {}
        sent: list[asyncio.Future[Any]] = []

        async def ship(where: tuple[str, int]) -> None:
            topic, partition = where
            sent.append(await producer.send_batch(pending.pop(where), topic, partition=partition))

        try:
            started, first_ms = time.monotonic(), int(due_ms[0]) if len(due_ms) else 0
            columns, stamps = self._columns, self._stamps
            for done, (row, due) in enumerate(zip(order.tolist(), due_ms.tolist(), strict=True)):
                if speedup is not None:
                    wait = (due - first_ms) / 1000 / speedup - (time.monotonic() - started)
                    if wait > 0:
                        for where in list(pending):
                            await ship(where)
                        await asyncio.sleep(wait)
                name = columns["topic"][row]
                topic = self._kafka.topic(name)
                key = columns["key"][row]
                where = (topic, await self._partition_of(producer, topic, key))
                message = {
                    "key": key,
                    "value": columns["value"][row],
                    "timestamp": stamps[row],
                    "headers": [(h["key"], h["value"]) for h in columns["headers"][row]],
                }
                batch = pending.get(where)
                if batch is None or batch.append(**message) is None:
                    if batch is not None:
                        await ship(where)
                    batch = pending[where] = producer.create_batch()
                    batch.append(**message)
                counts.add(name, 1)
                if self._progress is not None and done % 10_000 == 9_999:
                    self._progress(10_000)
            for where in list(pending):
                await ship(where)
            results = await asyncio.gather(*sent, return_exceptions=True)
        finally:
            await producer.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise ReplayError(f"{len(failures)} batches were not sent, the first: {failures[0]!r}")
        if self._progress is not None:
            self._progress(counts.total % 10_000)
        return counts

    async def _partition_of(self, producer: AIOKafkaProducer, topic: str, key: bytes | None) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(await producer.partitions_for(topic))
        if key is None:
            self._keyless += 1  # no key, no partition of its own: spread them evenly
            return partitions[self._keyless % len(partitions)]
        found = self._by_key.get((topic, key))
        if found is None:
            index = (murmur2(key) & 0x7FFFFFFF) % len(partitions)
            found = self._by_key[(topic, key)] = partitions[index]
        return found
