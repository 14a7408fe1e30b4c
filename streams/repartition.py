"""Re-keying an input topic by window group, for streams whose windows span input partitions.

payments.terminal-counts is keyed by terminal and portal.transactions by dossier (contract
section 3), but their windows group by (ward, category) and (agency, procedure_code): tallies
of one window arrive on every partition. Per-partition windows would each hold a part of the
window and overwrite each other's rows, and the contract gives stream time to "the owner of a
window's key". So these streams run in two stages, as Faust's `group_by` does:

1. a `Repartitioner` reads the contract topic, validates each message (dead letters go out
   here, naming the contract topic, partition and offset) and forwards the raw value to an
   internal topic keyed by the window group;
2. a StreamRunner (streams/runtime.py) windows the internal topic like any other input, so
   exactly one partition owns each window, its stream time and its dedup.

Exactness: a message is acked only after its forward is on every replica, its dead letter is
written, and a `pipeline_progress` row records its offset. That row is this stage's commit
point: after a restart, messages at or below it are not forwarded again. A kill between the
forward and that row re-forwards a few messages; stage 2 drops the copies by `event_id` (a copy
whose window has closed counts as late and changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from clickhouse_connect.driver.client import Client

from schemas.dead_letter import dead_letter
from schemas.exceptions import InvalidEvent
from sinks.base import BatchSink, Row
from streams.clock import local_time
from vtops.settings import KafkaSettings

log = logging.getLogger(__name__)


@runtime_checkable
class Repartitioned(Protocol):
    """A domain stream whose window groups span the partitions of its input topic."""

    name: str

    def route(self, raw: bytes | None) -> str:
        """The key of the window group the message folds into; InvalidEvent when invalid."""


def repartition_topic(kafka: KafkaSettings, stream_name: str) -> str:
    """The internal topic of a stream's second stage, per app id (like Faust's own topics)."""
    return kafka.topic(f"{kafka.app_id}.{stream_name}.by-group")


@dataclass
class _Partition:
    offset: int = -1  # last message forwarded or dead-lettered, as recorded
    invalid: int = 0
    forwards: list[Row] = field(default_factory=list)
    dead_letters: list[Row] = field(default_factory=list)
    pending: list[Any] = field(default_factory=list)  # Faust events awaiting the checkpoint


class Repartitioner:
    def __init__(
        self,
        stream: Repartitioned,
        source_topic: str,
        forward: BatchSink,
        tables: dict[str, BatchSink],
        dead_letter_topic: BatchSink,
        store: tuple[Client, str],
        executor: Executor,
        max_pending: int,
        highwater: Callable[[str, int], int] | None = None,
    ) -> None:
        self.stream = stream
        self.topic = source_topic
        self._forward = forward
        self._tables = tables
        self._dead_letter_topic = dead_letter_topic
        self._client, self._database = store
        self._executor = executor
        self._max_pending = max_pending
        self._highwater = highwater
        self._partitions: dict[int, _Partition] = {}
        self._pending_total = 0
        self._lock = asyncio.Lock()

    def _last_progress(self, partition: int) -> tuple[int, int] | None:
        rows = self._client.query(
            f"SELECT max(offset), argMax(invalid, offset) "
            f"FROM {self._database}.pipeline_progress FINAL "
            "WHERE source_topic = {topic:String} AND partition = {partition:UInt32} "
            "HAVING count() > 0",
            parameters={"topic": self.topic, "partition": partition},
        ).result_rows
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    async def _partition(self, partition: int) -> _Partition:
        held = self._partitions.get(partition)
        if held is None:
            loop = asyncio.get_running_loop()
            last = await loop.run_in_executor(self._executor, self._last_progress, partition)
            held = self._partitions[partition] = _Partition()
            if last is not None:
                held.offset, held.invalid = last
            log.info("assigned topic=%s partition=%d offset=%d", self.topic, partition, held.offset)
        return held

    async def on_event(self, event: Any) -> None:
        """Route one Faust event; called by the agent in offset order per partition."""
        message = event.message
        held = await self._partition(message.partition)
        if message.offset > held.offset:
            try:
                key = self.stream.route(message.value)
            except InvalidEvent as error:
                held.invalid += 1
                held.dead_letters.append(
                    dead_letter(
                        self.topic, message.partition, message.offset, message.value, error.reason
                    )
                )
            else:
                held.forwards.append({"key": key, "value": message.value})
            held.offset = message.offset
        held.pending.append(event)
        self._pending_total += 1
        if self._pending_total >= self._max_pending:
            await self.checkpoint()

    def _progress_row(self, partition: int, held: _Partition, sink_ms: float) -> Row:
        lag = -1
        if self._highwater is not None:
            lag = max(0, self._highwater(self.topic, partition) - held.offset - 1)
        return {
            "source_topic": self.topic,
            "partition": partition,
            "offset": held.offset,
            "recorded_at": local_time(int(time.time() * 1000)),
            "stream_time": None,
            # A message counts as an event where its journey ends: here for a dead letter, in
            # the second stage otherwise (with accepted, duplicate and late events), so that
            # totals over every source topic count each message once.
            "events": held.invalid,
            "accepted": 0,
            "duplicates": 0,
            "late": 0,
            "invalid": held.invalid,
            "open_windows": 0,
            "lag": lag,
            "sink_ms": sink_ms,
        }

    async def checkpoint(self) -> None:
        """Forward and dead-letter what came since the last checkpoint, then ack it."""
        async with self._lock:
            cut = [(p, held) for p, held in self._partitions.items() if held.pending]
            if not cut:
                return
            forwards = [row for _, held in cut for row in held.forwards]
            letters = [row for _, held in cut for row in held.dead_letters]
            acks = [event for _, held in cut for event in held.pending]
            snapshot = [(p, _Partition(held.offset, held.invalid)) for p, held in cut]
            for _, held in cut:
                held.forwards, held.dead_letters, held.pending = [], [], []
            self._pending_total = 0
            started = time.perf_counter()
            await self._forward.flush(forwards)
            await self._tables["dlq_events"].flush(letters)
            await self._dead_letter_topic.flush(letters)
            sink_ms = (time.perf_counter() - started) * 1000
            # The commit point: a restart forwards nothing at or below these offsets again.
            await self._tables["pipeline_progress"].flush(
                [self._progress_row(p, held, sink_ms) for p, held in snapshot]
            )
            for event in acks:
                event.ack()
            log.debug(
                "checkpoint topic=%s forwarded=%d dead_letters=%d acks=%d",
                self.topic,
                len(forwards),
                len(letters),
                len(acks),
            )

    async def on_revoked(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions once a checkpoint in flight has landed; the next owner
        starts after the last recorded offset and re-reads what was never recorded."""
        async with self._lock:
            for partition in partitions:
                held = self._partitions.pop(partition, None)
                if held is not None:
                    self._pending_total -= len(held.pending)
