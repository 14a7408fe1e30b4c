"""`vtops archive import`: an archive's messages into this environment's input topics, checked
before anything is sent.

Each message goes to the topic of the same contract name here, with its key (so the default
partitioner puts it on the partition of the same number when the topic has as many
partitions: dedup and lateness stay per partition), headers and timestamp. What is refused,
with one line each, before the first message goes:
- a topic that is not an input of the contract (an output, a dead-letter or a re-key topic: a
  forged watermark there would close every window), unless asked for (`any_topic`);
- a topic that does not exist here (an import never creates one: the broker would, with its
  defaults);
- messages older than the topic keeps: Kafka deletes a record whose timestamp is past
  `retention.ms` at its next check, so they would vanish minutes after the import. `restamp`
  sends them with the time of sending instead, the original in a `vtops.original-timestamp`
  header (event times are in the values: windows do not change).

Order: by timestamp across partitions, paced by it (`speedup`) or not, but never reordering
one partition: a message goes no earlier than those before it on its partition. The file is
read a row group per partition at a time, never whole.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from aiokafka import AIOKafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.partitioner.default import murmur2

from city import topics
from city.kafka_client import admin_request
from city.settings import KafkaSettings
from streams.app import aiokafka_config
from vtops.kafka.retention import Retention, topic_retention
from vtops.replay.archive import SCHEMA, ArchiveCounts, ArchiveInfo, read_info
from vtops.replay.exceptions import ReplayError

ORIGINAL_TIMESTAMP_HEADER = "vtops.original-timestamp"
# A message must stay retained at least this long after the import, for a worker to read it.
MIN_KEPT_MS = 24 * 3_600_000
DAY_MS = 86_400_000

Progress = Callable[[int], None]
T = TypeVar("T")
Segment = tuple[str, int]  # contract topic, partition


@dataclass(frozen=True)
class TopicImport:
    """One contract topic of the archive, and where it would go here."""

    contract_topic: str
    topic: str  # broker-side, with this environment's prefix
    messages: int
    oldest_ms: int
    partitions_in_file: int
    partitions_here: int | None  # None: the topic does not exist here
    retention: Retention | None


@dataclass(frozen=True)
class ImportPlan:
    path: Path
    info: ArchiveInfo | None  # None: a format-1 archive
    topics: list[TopicImport]
    segments: dict[Segment, list[int]]  # each partition's row groups, in offset order
    restamp: bool
    refusals: list[str]
    warnings: list[str]

    @property
    def total(self) -> int:
        return sum(t.messages for t in self.topics)


def plan_import(
    kafka: KafkaSettings, path: Path, any_topic: bool, restamp: bool, now_ms: int | None = None
) -> ImportPlan:
    """What importing `path` would send where, and why it must not (`refusals`)."""
    file = _open(path)
    segments, counts, oldest = _segments(file, path)
    contract = sorted(counts)
    broker_topics = [kafka.topic(name) for name in contract]
    partitions = _partitions_here(kafka, broker_topics)
    retention = topic_retention(kafka, [t for t in broker_topics if t in partitions])
    now = int(time.time() * 1000) if now_ms is None else now_ms
    planned: list[TopicImport] = []
    refusals: list[str] = []
    warnings: list[str] = []
    for name, topic in zip(contract, broker_topics, strict=True):
        in_file = 1 + max(p for t, p in segments if t == name)
        here = partitions.get(topic)
        kept = retention.get(topic)
        planned.append(TopicImport(name, topic, counts[name], oldest[name], in_file, here, kept))
        if name not in topics.INPUTS and not any_topic:
            refusals.append(
                f"{name}: not an input topic of the contract (outputs, dead letters and re-key "
                "topics are written by the worker; --any-topic to write it anyway)"
            )
        if here is None:
            refusals.append(
                f"{topic}: no such topic here; an import never creates one "
                "(`vtops topics create` makes the contract's topics)"
            )
            continue
        if here != in_file:
            warnings.append(
                f"{topic} has {here} partitions, the archive {in_file}: messages land on other "
                "partitions than they came from, so dedup and lateness see another order"
            )
        deleted_by = None if kept is None else _deleted_by(kept, oldest[name])
        if deleted_by is not None and not restamp and deleted_by < now + MIN_KEPT_MS:
            assert kept is not None and kept.retention_ms is not None
            refusals.append(
                f"{topic} keeps messages {kept.retention_ms / DAY_MS:g} days by timestamp "
                f"(retention.ms={kept.retention_ms}) and the archive's oldest is "
                f"{(now - oldest[name]) / DAY_MS:.1f} days old: the broker would delete it "
                "within a day; use --restamp (sent with today's time, the original in a "
                f"'{ORIGINAL_TIMESTAMP_HEADER}' header) or raise the topic's retention.ms"
            )
    return ImportPlan(path, read_info(path), planned, segments, restamp, refusals, warnings)


def _deleted_by(kept: Retention, oldest_ms: int) -> int | None:
    """When the broker may delete the oldest message; None when it never will by its age."""
    if kept.retention_ms is None or kept.log_append_time:
        return None  # kept forever, or aged from its arrival
    return oldest_ms + kept.retention_ms


def _open(path: Path) -> pq.ParquetFile:
    try:
        file = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise ReplayError(f"{path}: not a readable Parquet file ({error})") from None
    missing = [f.name for f in SCHEMA if f.name not in file.schema_arrow.names]
    if missing:
        raise ReplayError(f"{path}: not a vtops archive: no column {missing[0]!r}")
    return file


def _segments(
    file: pq.ParquetFile, path: Path
) -> tuple[dict[Segment, list[int]], dict[str, int], dict[str, int]]:
    """Each partition's row groups; messages and the oldest timestamp per contract topic.
    Reads three small columns, one row group at a time."""
    segments: dict[Segment, list[int]] = {}
    counts: dict[str, int] = {}
    oldest: dict[str, int] = {}
    for group in range(file.num_row_groups):
        rows = file.read_row_group(group, columns=["topic", "partition", "timestamp"])
        where = set(zip(rows["topic"].to_pylist(), rows["partition"].to_pylist(), strict=True))
        if len(where) != 1:
            raise ReplayError(
                f"{path}: row group {group} mixes partitions: not written by `vtops archive export`"
            )
        ((name, partition),) = where
        segments.setdefault((str(name), int(partition)), []).append(group)
        counts[name] = counts.get(name, 0) + rows.num_rows
        stamps = rows["timestamp"].cast(pa.int64()).fill_null(0)
        first = pc.min(stamps).as_py()
        oldest[name] = min(oldest.get(name, first), first)
    return segments, counts, oldest


def _partitions_here(kafka: KafkaSettings, wanted: list[str]) -> dict[str, int]:
    def describe(admin: KafkaAdminClient) -> list[dict[str, Any]]:
        present = [t for t in wanted if t in set(admin.list_topics())]
        return admin.describe_topics(present) if present else []

    described = admin_request(kafka, f"describing topics on {kafka.kafka_bootstrap}", describe)
    return {d["name"]: len(d["partitions"]) for d in described}


def send_order(segments: Iterable[Iterable[tuple[int, T]]]) -> Iterator[tuple[int, T]]:
    """(due time, item) across segments (each a partition's (timestamp, item) in offset order):
    by timestamp, except that an item is due no earlier than those before it in its segment
    (the running maximum); ties go in segment order."""

    def due(index: int, segment: Iterable[tuple[int, T]]) -> Iterator[tuple[int, int, T]]:
        latest: int | None = None
        for stamp, item in segment:
            latest = stamp if latest is None else max(latest, stamp)
            yield latest, index, item

    merged = heapq.merge(*(due(i, s) for i, s in enumerate(segments)), key=lambda x: x[:2])
    return ((at, item) for at, _, item in merged)


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str  # the contract's name
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp: int


def _messages(file: pq.ParquetFile, groups: list[int]) -> Iterator[tuple[int, _Message]]:
    """A partition's messages, one row group in memory at a time."""
    for group in groups:
        rows = file.read_row_group(group, columns=["topic", "timestamp", "key", "value", "headers"])
        stamps = rows["timestamp"].cast(pa.int64()).fill_null(0).to_pylist()
        columns = zip(
            rows["topic"].to_pylist(),
            rows["key"].to_pylist(),
            rows["value"].to_pylist(),
            rows["headers"].to_pylist(),
            stamps,
            strict=True,
        )
        for topic, key, value, headers, stamp in columns:
            pairs = [(h["key"], h["value"]) for h in headers or ()]
            yield stamp, _Message(topic, key, value, pairs, stamp)


def import_archive(
    kafka: KafkaSettings, plan: ImportPlan, speedup: float | None, progress: Progress | None = None
) -> ArchiveCounts:
    """Send the plan's messages; `speedup` None: as fast as the broker takes them."""
    if plan.refusals:
        raise ReplayError(plan.refusals[0])
    if speedup is not None and speedup <= 0:
        raise ReplayError("--speedup: must be above 0")
    file = _open(plan.path)
    ordered = send_order(_messages(file, groups) for groups in plan.segments.values())
    return asyncio.run(_Sender(kafka, plan.restamp, progress).send(ordered, speedup))


class _Sender:
    """Sends whole batches at a time (aiokafka's batch builder): a message costs an append,
    where a producer's `send` costs tens of microseconds of Python. Batches fill per partition
    in send order; paced, every pending batch goes out before each wait."""

    def __init__(self, kafka: KafkaSettings, restamp: bool, progress: Progress | None) -> None:
        self._kafka = kafka
        self._restamp = restamp
        self._progress = progress
        self._partitions: dict[str, list[int]] = {}
        # The default partitioner's choice (murmur2 of the key, as the Java client), per key:
        # an archive repeats a few thousand keys a million times.
        self._by_key: dict[tuple[str, bytes], int] = {}
        self._keyless = 0

    async def send(
        self, ordered: Iterator[tuple[int, _Message]], speedup: float | None
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
            started, first_ms = time.monotonic(), None
            for done, (due, message) in enumerate(ordered):
                first_ms = due if first_ms is None else first_ms
                if speedup is not None:
                    wait = (due - first_ms) / 1000 / speedup - (time.monotonic() - started)
                    if wait > 0:
                        for where in list(pending):
                            await ship(where)
                        await asyncio.sleep(wait)
                topic = self._kafka.topic(message.topic)
                where = (topic, await self._partition_of(producer, topic, message.key))
                record = self._record(message)
                batch = pending.get(where)
                if batch is None or batch.append(**record) is None:
                    if batch is not None:
                        await ship(where)
                    batch = pending[where] = producer.create_batch()
                    batch.append(**record)
                counts.add(message.topic, 1)
                if self._progress is not None and done % 1_000 == 999:
                    self._progress(1_000)
            for where in list(pending):
                await ship(where)
            results = await asyncio.gather(*sent, return_exceptions=True)
        finally:
            await producer.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise ReplayError(f"{len(failures)} batches were not sent, the first: {failures[0]!r}")
        if self._progress is not None:
            self._progress(counts.total % 1_000)
        return counts

    def _record(self, message: _Message) -> dict[str, Any]:
        if not self._restamp:
            return {
                "key": message.key,
                "value": message.value,
                "timestamp": message.timestamp,
                "headers": message.headers,
            }
        original = (ORIGINAL_TIMESTAMP_HEADER, str(message.timestamp).encode())
        return {
            "key": message.key,
            "value": message.value,
            "timestamp": int(time.time() * 1000),
            "headers": [*message.headers, original],
        }

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
