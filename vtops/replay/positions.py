"""Where the app stands on each partition it reads: the retained range, the group's committed
offset, and where the worker resumes (its saved state, which wins over the group's offset)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, replace

import aiokafka
from aiokafka import ConsumerRecord
from kafka import KafkaConsumer, TopicPartition

from city.kafka_client import kafka_python_config
from city.settings import KafkaSettings
from streams.app import aiokafka_config
from streams.engine.reader import BoundedReader, ReaderError
from streams.engine.records import is_watermark
from vtops.kafka.offsets import committed_offsets
from vtops.replay.exceptions import ReplayError

# A re-key partition's unread tail up to this long is read to tell watermarks from events; a
# longer one is a real backlog, where a watermark or two do not matter.
_TAIL_READ = 1_000


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    beginning: int  # the first offset retention kept
    end: int  # the next offset to be written
    committed: int | None  # the group's committed offset: for lag, never where it resumes
    # The next offset the worker reads: its saved state's offset plus one, the beginning when
    # it has no state; None when the state could not be read (the embedded store is in use).
    resume: int | None
    # Of the unread messages of a re-key partition, the routers' watermarks: the last
    # checkpoint before a clean stop sends one to every partition, which no one reads.
    unread_watermarks: int = 0

    @property
    def next_read(self) -> int:
        at = self.resume if self.resume is not None else self.committed
        return self.beginning if at is None else at

    @property
    def lag(self) -> int:
        """The events waiting: unread messages, watermarks aside."""
        return max(0, self.end - self.next_read - self.unread_watermarks)


@dataclass(frozen=True)
class Ranges:
    """The retained offsets of some partitions: [beginning, end)."""

    beginning: dict[TopicPartition, int]
    end: dict[TopicPartition, int]


def retained_ranges(settings: KafkaSettings, topics: list[str]) -> Ranges:
    """Every partition of `topics` that exist; a topic not made yet has none."""
    consumer = KafkaConsumer(**kafka_python_config(settings))
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        return Ranges(consumer.beginning_offsets(tps), consumer.end_offsets(tps))
    finally:
        consumer.close()


def oldest_retained_ms(settings: KafkaSettings, ranges: Ranges) -> int | None:
    """The latest timestamp among the first messages of the partitions retention has cut
    (beginning past 0): before it, some of their input may be gone. None when nothing was."""
    cut = [tp for tp, first in ranges.beginning.items() if first > 0 and first < ranges.end[tp]]
    if not cut:
        return None
    firsts: list[int] = []
    for tp in cut:
        records = records_between(settings, tp, ranges.beginning[tp], ranges.end[tp])
        first = next(records, None)
        records.close()  # the first message is all it takes: the reader stops here
        if first is not None:
            firsts.append(first.timestamp)
    return max(firsts) if firsts else None


def records_between(
    kafka: KafkaSettings, tp: TopicPartition, start: int, stop: int
) -> Generator[ConsumerRecord, None, None]:
    """The partition's records at offsets [start, stop), in order, for the operator's tools
    that read synchronously; ReplayError when the range is not all retained or the broker
    stops answering (streams/engine/reader.py reads them)."""
    if start >= stop:
        return
    with asyncio.Runner() as runner:
        reader = BoundedReader(aiokafka_config(kafka), batch=10_000)
        runner.run(reader.__aenter__())
        batches = reader.read({tp: (start, stop)})
        try:
            while True:
                try:
                    _, records = runner.run(_next(batches))
                except StopAsyncIteration:
                    return
                yield from records
        except ReaderError as failed:
            raise ReplayError(str(failed)) from failed
        finally:
            runner.run(batches.aclose())
            runner.run(reader.__aexit__(None, None, None))


async def _next(
    batches: AsyncGenerator[tuple[aiokafka.TopicPartition, list[ConsumerRecord]], None],
) -> tuple[aiokafka.TopicPartition, list[ConsumerRecord]]:
    return await anext(batches)


def offsets_at(
    settings: KafkaSettings, tps: list[TopicPartition], at_ms: int
) -> dict[TopicPartition, int | None]:
    """The first offset of each partition whose timestamp is at or after `at_ms`; None when
    every message is older."""
    consumer = KafkaConsumer(**kafka_python_config(settings))
    try:
        found = consumer.offsets_for_times(dict.fromkeys(tps, at_ms))
        return {tp: None if found.get(tp) is None else found[tp].offset for tp in tps}
    finally:
        consumer.close()


def positions(
    settings: KafkaSettings,
    topics: list[str],
    saved: dict[tuple[str, int], int] | None,
    rekey_topics: frozenset[str] = frozenset(),
) -> list[Position]:
    """Every partition of `topics`, by topic and partition. `saved`: (topic, partition) → the
    last offset in the saved state; None when unknown."""
    ranges = retained_ranges(settings, topics)
    committed = committed_offsets(settings)
    found: list[Position] = []
    for tp in sorted(ranges.beginning):
        beginning = ranges.beginning[tp]
        resume = None
        if saved is not None:
            last = saved.get((tp.topic, tp.partition))
            resume = beginning if last is None else last + 1
        found.append(
            Position(tp.topic, tp.partition, beginning, ranges.end[tp], committed.get(tp), resume)
        )
    tails = [p for p in found if p.topic in rekey_topics and 0 < p.lag <= _TAIL_READ]
    if not tails:
        return found
    marks = {
        (p.topic, p.partition): sum(
            is_watermark(r.headers or ())
            for r in records_between(
                settings, TopicPartition(p.topic, p.partition), p.next_read, p.end
            )
        )
        for p in tails
    }
    return [replace(p, unread_watermarks=marks.get((p.topic, p.partition), 0)) for p in found]
