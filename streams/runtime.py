"""Runs one domain stream inside the Faust worker: events in, checkpoints out.

Faust brings the consumer group, partition assignment, the agent and the producer. Offsets are
ours: the agent reads with acks off, and an event is acked, and so committable, only after a
checkpoint has put everything it changed into ClickHouse, the output topic and the state
store, in that order. A worker killed at any moment therefore restarts from a state that
matches a committed-or-earlier offset, and replays the rest deterministically:
- messages at or below the restored state's offset are skipped,
- window rows carry `version = 2 * last offset + final`, a function of the state alone, so a
  replayed write is identical to the one it repeats and a fuller state always wins,
- record tables collapse repeats by identity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from schemas.dead_letter import dead_letter
from schemas.exceptions import InvalidEvent
from sinks.base import BatchSink, Row
from streams.clock import local_time
from streams.definition import Records, WindowedStream
from streams.restore import relearn_ids
from streams.state_store import PartitionCut, StateStore
from streams.windows import PartitionWindows, Window

log = logging.getLogger(__name__)

A = TypeVar("A")


@dataclass
class Sinks:
    """Where a stream's output goes; `tables` maps ClickHouse table name to its sink."""

    tables: dict[str, BatchSink]
    output_topic: BatchSink
    dead_letter_topic: BatchSink


@dataclass
class _Partition(Generic[A]):
    state: PartitionWindows[A]
    pending: list[Any] = field(default_factory=list)  # Faust events awaiting their checkpoint


def window_version(window: Window[Any], final: bool) -> int:
    return 2 * window.last_offset + int(final)


class StreamRunner(Generic[A]):
    def __init__(
        self,
        stream: WindowedStream[A],
        source_topic: str,
        store: StateStore[A],
        sinks: Sinks,
        client_config: dict[str, Any],
        max_pending: int,
        highwater: Callable[[str, int], int] | None = None,
    ) -> None:
        self.stream = stream
        self.topic = source_topic
        self._store = store
        self._sinks = sinks
        self._client_config = client_config
        self._max_pending = max_pending
        self._highwater = highwater
        self._partitions: dict[int, _Partition[A]] = {}
        self._records = Records()
        self._dead_letters: list[Row] = []
        self._lock = asyncio.Lock()
        self._pending_total = 0

    async def _partition(self, partition: int) -> _Partition[A]:
        held = self._partitions.get(partition)
        if held is None:
            state = await self._store.load(partition)
            if state is None:
                state = self.stream.new_state()
            else:
                await relearn_ids(self.stream, state, self.topic, partition, self._client_config)
            held = self._partitions[partition] = _Partition(state)
            log.info(
                "assigned topic=%s partition=%d offset=%d windows=%d",
                self.topic,
                partition,
                state.offset,
                len(state.windows),
            )
        return held

    async def on_event(self, event: Any) -> None:
        """Fold one Faust event; called by the agent in offset order per partition."""
        message = event.message
        held = await self._partition(message.partition)
        state = held.state
        if message.offset > state.offset:
            state.counters.events += 1
            try:
                self.stream.process(state, message.offset, message.value, self._records)
            except InvalidEvent as error:
                self._dead_letter(message, error.reason)
            except Exception as error:
                # A message that trips a bug must not stop the partition behind it: it is kept
                # as a dead letter, loudly, and the stream goes on.
                log.exception(
                    "unprocessable topic=%s partition=%d offset=%d",
                    self.topic,
                    message.partition,
                    message.offset,
                )
                self._dead_letter(message, f"payload: unprocessable ({type(error).__name__})")
            state.offset = message.offset
        held.pending.append(event)
        self._pending_total += 1
        if self._pending_total >= self._max_pending:
            await self.checkpoint()

    def _dead_letter(self, message: Any, reason: str) -> None:
        self._partitions[message.partition].state.counters.invalid += 1
        self._dead_letters.append(
            dead_letter(self.topic, message.partition, message.offset, message.value, reason)
        )

    def _cut(self) -> tuple[list[PartitionCut[A]], list[Any]]:
        cuts: list[PartitionCut[A]] = []
        acks: list[Any] = []
        for partition, held in self._partitions.items():
            state = held.state
            changed, closed = state.take_changes()
            keyed_changed, keyed_dropped = state.take_keyed_changes()
            if held.pending or changed or closed or keyed_changed or keyed_dropped:
                cuts.append(
                    PartitionCut(
                        partition,
                        state.offset,
                        state.stream_time_ms,
                        state.counters.as_dict(),
                        len(state.windows),
                        changed,
                        closed,
                        keyed_changed,
                        keyed_dropped,
                    )
                )
            acks.extend(held.pending)
            held.pending = []
        self._pending_total = 0
        return cuts, acks

    def _window_rows(self, cuts: Iterable[PartitionCut[A]]) -> list[Row]:
        rows = []
        for cut in cuts:
            for windows, final in ((cut.changed, False), (cut.closed, True)):
                for window in windows:
                    row = self.stream.window_row(window, final)
                    row["version"] = window_version(window, final)
                    rows.append(row)
        return rows

    def _progress_rows(self, cuts: Iterable[PartitionCut[A]], sink_ms: float) -> list[Row]:
        rows = []
        for cut in cuts:
            lag = -1
            if self._highwater is not None:
                lag = max(0, self._highwater(self.topic, cut.partition) - cut.offset - 1)
            rows.append(
                {
                    "source_topic": self.topic,
                    "partition": cut.partition,
                    "offset": cut.offset,
                    "recorded_at": local_time(int(time.time() * 1000)),
                    "stream_time": None
                    if cut.stream_time_ms is None
                    else local_time(cut.stream_time_ms),
                    **cut.counters,
                    "open_windows": cut.open_windows,
                    "lag": lag,
                    "sink_ms": sink_ms,
                }
            )
        return rows

    async def checkpoint(self) -> None:
        """Write what changed since the last checkpoint, then ack the events behind it."""
        async with self._lock:
            cuts, acks = self._cut()
            # Rows are made now, from the cut; the agent goes on folding while they are written.
            window_rows = self._window_rows(cuts)
            state_rows = [row for cut in cuts for row in self._store.rows(cut)]
            records = self._records.drain()
            dead_letters, self._dead_letters = self._dead_letters, []
            if not cuts and not records and not dead_letters:
                return
            started = time.perf_counter()
            tables = self._sinks.tables
            await tables[self.stream.window_table].flush(window_rows)
            for table, rows in records.items():
                await tables[table].flush(rows)
            await tables["dlq_events"].flush(dead_letters)
            await self._sinks.output_topic.flush(window_rows)
            await self._sinks.dead_letter_topic.flush(dead_letters)
            sink_ms = (time.perf_counter() - started) * 1000
            await tables["pipeline_progress"].flush(self._progress_rows(cuts, sink_ms))
            # The commit point: after this insert a restart resumes from these offsets.
            await self._store.save(state_rows)
            for event in acks:
                event.ack()
            log.debug(
                "checkpoint topic=%s partitions=%d rows=%d acks=%d sink_ms=%.1f",
                self.topic,
                len(cuts),
                len(window_rows),
                len(acks),
                sink_ms,
            )

    async def on_revoked(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions once any checkpoint in flight has landed; the next owner
        restores them from the store and replays what was never checkpointed."""
        async with self._lock:
            for partition in partitions:
                held = self._partitions.pop(partition, None)
                if held is not None:
                    self._pending_total -= len(held.pending)
