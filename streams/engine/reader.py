"""The one bounded reader: some partitions' records between a start and a stop offset, once.

Who reads a fixed stretch of a topic reads it here: restore (the ids of open windows), the
rebuild of `vtops offsets reset`, `vtops reprocess`, and the operator tools that count, export
or re-drive messages. The live worker's consumer is not one of them: it has no stop.

The contract:
- `read(ranges)` yields `(partition, records)` batches, every record of a range exactly once,
  in offset order within a partition, partitions interleaved as the consumer fetches them.
- A range is exhausted when the consumer's position reaches its stop offset. Before reading,
  the broker's beginning and end offsets say whether each range is still there; a range that is
  not (retention cut its start, or it reaches past the end) raises `RangeNotRetained`, which
  carries the part that is, at once — no counting of empty polls; so does a range that
  retention cuts while it is read.
- Records aiokafka cannot read (a header name that is not UTF-8) come in their place as
  `UnreadableRecord`s (streams/engine/fetch.py), which the stages make dead letters.
- A read that makes no progress for `stall_s` raises `ReaderStalled`: the broker stopped
  answering, which end offsets cannot tell.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from streams.engine.fetch import Fetch

# [start, stop): offsets of one partition.
Range = tuple[int, int]

STALL_S = 30.0


class ReaderError(RuntimeError):
    """A stretch of a topic that cannot be read as asked."""


class RangeNotRetained(ReaderError):
    """Some asked ranges are not (wholly) in the topic; `retained` holds what is of each."""

    def __init__(
        self, asked: Mapping[TopicPartition, Range], retained: dict[TopicPartition, Range]
    ):
        self.retained = retained
        gone = ", ".join(
            f"{tp.topic} partition {tp.partition}: offsets {start}..{stop - 1} asked, "
            f"{retained[tp][0]}..{retained[tp][1] - 1} retained"
            for tp, (start, stop) in sorted(asked.items())
            if retained[tp] != (start, stop)
        )
        super().__init__(f"not in the topic any more (retention, or a truncated topic): {gone}")


class ReaderStalled(ReaderError):
    """The broker returned nothing for `stall_s` with ranges still unread."""


class BoundedReader:
    """A consumer outside every group, for reading fixed ranges; use it as `async with`."""

    _consumer: AIOKafkaConsumer
    _fetch: Fetch

    def __init__(
        self, client_config: dict[str, Any], batch: int = 5_000, stall_s: float = STALL_S
    ) -> None:
        self._client_config = client_config
        self._batch = batch
        self._stall_s = stall_s

    async def __aenter__(self) -> BoundedReader:
        # Made here, not in __init__: an aiokafka client belongs to the loop that starts it.
        # No offset reset: a stretch retention deletes while it is read must fail the read, not
        # move it to the end (aiokafka's default), which would end it short and silently.
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False, group_id=None, auto_offset_reset="none",
            **self._client_config,
        )  # fmt: skip
        await self._consumer.start()
        self._fetch = Fetch(self._consumer, self._client_config)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def retained(self, ranges: Mapping[TopicPartition, Range]) -> dict[TopicPartition, Range]:
        """The part of each range the topic still holds (empty where none)."""
        tps = list(ranges)
        if not tps:
            return {}
        beginning = await self._consumer.beginning_offsets(tps)
        end = await self._consumer.end_offsets(tps)
        kept: dict[TopicPartition, Range] = {}
        for tp, (start, stop) in ranges.items():
            first, last = max(start, beginning[tp]), min(stop, end[tp])
            kept[tp] = (first, max(first, last))
        return kept

    async def read(
        self, ranges: Mapping[TopicPartition, Range]
    ) -> AsyncGenerator[tuple[TopicPartition, list[ConsumerRecord]], None]:
        """Every record of `ranges`; RangeNotRetained before reading if one is not all there.
        Partitions may be kafka-python's (the operator tools'): aiokafka takes only its own."""
        asked = {
            TopicPartition(tp.topic, tp.partition): (start, stop)
            for tp, (start, stop) in ranges.items()
            if start < stop
        }
        retained = await self.retained(asked)
        if retained != asked:
            raise RangeNotRetained(asked, retained)
        if not asked:
            return
        consumer = self._consumer
        consumer.assign(sorted(asked))
        for tp, (start, _) in asked.items():
            consumer.seek(tp, start)
        left = set(asked)
        progressed = time.monotonic()
        while left:
            try:
                batches = await self._fetch.getmany(*left, timeout_ms=500, max_records=self._batch)
            except OffsetOutOfRangeError:
                raise RangeNotRetained(asked, await self.retained(asked)) from None
            for tp, records in batches.items():
                stop = asked[tp][1]
                kept = [r for r in records if r.offset < stop]
                if kept:
                    progressed = time.monotonic()
                    yield tp, kept
            for tp in list(left):
                if await consumer.position(tp) >= asked[tp][1]:
                    left.discard(tp)
                    consumer.pause(tp)
            if left and time.monotonic() - progressed > self._stall_s:
                unread = ", ".join(f"{tp.topic} partition {tp.partition}" for tp in sorted(left))
                raise ReaderStalled(f"nothing read for {self._stall_s:.0f} s; unread: {unread}")
