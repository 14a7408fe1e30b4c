"""One checkpoint protocol for every stage: numbered steps, the commit point, then Kafka.

Every `checkpoint_interval_s` the engine takes a cut of every stage, synchronously, between
two batches; then it writes the cut in order:

1. WINDOWS: window rows and records into their ClickHouse tables;
2. TOPICS: window rows to the output topics; forwards, then watermarks, to the re-key topics;
3. DEAD_LETTERS: to `dlq_events` and the DLQ topics;
4. PROGRESS: `pipeline_progress` rows;
5. the state of every stage and partition in ONE insert into `stream_state`: the commit
   point, after which a restart resumes from these offsets;
6. the group's Kafka offsets, for operators and lag, never trusted over the state.

A crash anywhere before step 5 only repeats writes: ClickHouse keeps the row of the highest
version per window (versions are functions of the state) and collapses records by identity;
the topics are at-least-once, and their readers keep the highest version per key (a replay may
cut elsewhere and re-send a window at a lower version than one already sent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Protocol

from aiokafka import TopicPartition

from sinks.base import BatchSink, Row
from streams.engine.durations import Durations
from streams.engine.pause import pause_point
from streams.engine.state_store import StateRow, StateStore

log = logging.getLogger(__name__)


class Step(IntEnum):
    WINDOWS = 1
    TOPICS = 2
    DEAD_LETTERS = 3
    PROGRESS = 4


@dataclass
class Cut:
    """What one checkpoint writes, gathered from every stage before any write starts."""

    writes: dict[tuple[Step, BatchSink], list[Row]] = field(default_factory=dict)
    state: list[StateRow] = field(default_factory=list)
    # The next offset to read per partition, committed to the group after the state.
    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def write(self, step: Step, sink: BatchSink, rows: Sequence[Row]) -> None:
        if rows:
            self.writes.setdefault((step, sink), []).extend(rows)

    @property
    def empty(self) -> bool:
        return not self.writes and not self.state and not self.offsets

    def ordered(self) -> list[tuple[BatchSink, list[Row]]]:
        # Stable: within a step, sinks keep the order stages registered them in.
        return [(sink, rows) for (_, sink), rows in sorted(self.writes.items(), key=_step)]


def _step(item: tuple[tuple[Step, BatchSink], list[Row]]) -> int:
    return int(item[0][0])


@dataclass
class StageSinks:
    """Where a stage's output goes: `tables` maps ClickHouse table name to its sink, and
    `output_topic` is the topic the stage writes (window rows, or a router's forwards)."""

    tables: dict[str, BatchSink]
    output_topic: BatchSink
    dead_letter_topic: BatchSink
    # Record tables whose rows also go to a topic (traffic alerts to `traffic.alerts`).
    record_topics: dict[str, BatchSink] = field(default_factory=dict)


# A partition's high-water mark as the consumer last saw it; None before its first fetch.
HighWater = Callable[[str, int], int | None]


def lag_of(highwater: int | None, offset: int) -> int | None:
    """Messages after `offset` that the partition already holds."""
    return None if highwater is None else max(0, highwater - offset - 1)


@dataclass(frozen=True)
class PartitionProgress:
    """What a stage holds of one partition: written as a `pipeline_progress` row at each
    checkpoint and read by /metrics at each scrape (streams/health/metrics.py)."""

    stream: str
    topic: str
    partition: int
    offset: int  # the last message folded; -1 before the first
    stream_time_ms: int | None
    counters: dict[str, int]  # cumulative: the PROGRESS_COUNTERS of pipeline_progress
    open_windows: int
    # By this process, for /metrics (streams/engine/tally.py): events (messages read), and
    # what became of them: accepted, duplicates, late, invalid, recorded, forwarded.
    counted: dict[str, int]


# The counters of a `pipeline_progress` row.
PROGRESS_COUNTERS = ("events", "accepted", "duplicates", "late", "invalid")


def _instant(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def progress_row(progress: PartitionProgress, lag: int | None, last_checkpoint_ms: float) -> Row:
    """A `pipeline_progress` row (step 4): a partition's cumulative counters at the cut."""
    stream_time_ms = progress.stream_time_ms
    return {
        "source_topic": progress.topic,
        "partition": progress.partition,
        "offset": progress.offset,
        # Instants, so UTC: the store's columns show them in city time.
        "recorded_at": datetime.now(UTC),
        "stream_time": None if stream_time_ms is None else _instant(stream_time_ms),
        **{key: progress.counters[key] for key in PROGRESS_COUNTERS},
        "open_windows": progress.open_windows,
        "lag": -1 if lag is None else lag,
        "sink_ms": last_checkpoint_ms,
    }


class Stage(Protocol):
    """A consumer of some input topic partitions: folds batches, and says what to persist."""

    topic: str

    async def assign(self, partition: int) -> int | None:
        """Load the partition's state; the offset to resume reading at, or None for the start."""

    def starts_at(self, partition: int, offset: int) -> None:
        """A partition without state starts at `offset`, the first one retention kept."""

    def fold(self, partition: int, records: Sequence[object]) -> None:
        """Fold a batch of one partition's records, in offset order, synchronously."""

    def cut(self, cut: Cut, last_checkpoint_ms: float) -> None:
        """Add everything that changed since the last cut: rows by step, state, offsets."""

    def revoke(self, partition: int) -> None:
        """Forget the partition; its next owner restores it from the store."""

    def progress(self) -> list[PartitionProgress]:
        """Every assigned partition as it stands now; cheap enough for every scrape."""


Commit = Callable[[dict[TopicPartition, int]], Awaitable[None]]


class Checkpointer:
    """Takes cuts of every stage and writes them, one checkpoint at a time."""

    def __init__(self, stages: Sequence[Stage], store: StateStore, commit: Commit) -> None:
        self._stages = stages
        self._store = store
        self._commit = commit
        self._lock = asyncio.Lock()
        self.last_duration_ms = 0.0
        self.durations = Durations()  # of the checkpoints that wrote something, for /metrics
        # Wall-clock time the last checkpoint ended, written or with nothing to write; for
        # /metrics, which tells a stuck checkpoint from an idle pipeline by it.
        self.finished_at: float | None = None

    async def run(self) -> None:
        """Take a cut of every stage and write it."""
        async with self._lock:
            cut = Cut()
            for stage in self._stages:
                stage.cut(cut, self.last_duration_ms)
            if cut.empty:
                self.finished_at = time.time()
                return
            self._store.ensure_present()
            await pause_point("checkpoint")
            started = time.perf_counter()
            for sink, rows in cut.ordered():
                await sink.flush(rows)
            await pause_point("before-state-save")
            await self._store.save(cut.state)
            # Only now may the group move on: what the offsets cover is in the store.
            await self._commit(cut.offsets)
            self.last_duration_ms = (time.perf_counter() - started) * 1000
            self.durations.observe(self.last_duration_ms / 1000)
            self.finished_at = time.time()
            log.debug(
                "checkpoint writes=%d state_rows=%d ms=%.1f",
                len(cut.writes),
                len(cut.state),
                self.last_duration_ms,
            )
