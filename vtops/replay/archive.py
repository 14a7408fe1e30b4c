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

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from city.kafka_client import kafka_python_config
from city.settings import KafkaSettings
from vtops.kafka.topics import ensure_topics
from vtops.replay.exceptions import ReplayError
from vtops.replay.positions import offsets_at, retained_ranges
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
    consumer.assign([tp])
    consumer.seek(tp, start)
    rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    idle = 0
    while consumer.position(tp) < stop:
        records = consumer.poll(timeout_ms=500, max_records=10_000).get(tp, [])
        idle = 0 if records else idle + 1
        if idle >= 30:
            raise ReplayError(f"{tp.topic} partition {tp.partition}: stopped at {start}..{stop}")
        for record in records:
            if record.offset >= stop:
                break
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
    columns = {name: table[name].to_pylist() for name in ("topic", "key", "value", "headers")}
    stamps = table["timestamp"].cast(pa.int64()).to_pylist()
    producer = KafkaProducer(
        **kafka_python_config(kafka), acks="all", linger_ms=20, batch_size=512 * 1024
    )
    counts = ArchiveCounts()
    failures: list[Exception] = []
    started, first_ms = time.monotonic(), int(due_ms[0]) if len(due_ms) else 0
    try:
        for sent, (row, due) in enumerate(zip(order.tolist(), due_ms.tolist(), strict=True)):
            if speedup is not None:
                wait = (due - first_ms) / 1000 / speedup - (time.monotonic() - started)
                if wait > 0:
                    time.sleep(wait)
            topic = columns["topic"][row]
            producer.send(
                kafka.topic(topic),
                key=columns["key"][row],
                value=columns["value"][row],
                headers=[(h["key"], h["value"]) for h in columns["headers"][row]],
                timestamp_ms=stamps[row],
            ).add_errback(failures.append)
            counts.add(topic, 1)
            if progress is not None and sent % 10_000 == 9_999:
                progress(10_000)
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise ReplayError(f"{len(failures)} messages were not sent, the first: {failures[0]!r}")
    if progress is not None:
        progress(counts.total % 10_000)
    return counts
