"""The worker's stages run outside the worker, over fixed offset ranges: the offline feed.

`vtops reprocess` and `vtops offsets reset`'s rebuild fold the retained input with the stages
the worker uses (streams/engine/stages.py) through the runner the worker folds with
(streams/engine/runner.py), fed by the bounded reader (streams/engine/reader.py) instead of the
group's consumer. Nothing is loaded or saved (`NothingSaved`) and no sink writes
(`Unwritten`): every cut goes to the caller, who reads the rows it wants from it by sink.

A re-keyed stream is routed in memory: the router's forwards and watermarks of each batch go
straight to partition 0 of the window stage, as the result does not depend on how windows are
spread over partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from sinks.base import BatchSink, Row
from sinks.clickhouse.migrations import TABLES
from streams.engine.checkpoint import Cut, Stage, StageSinks, Step
from streams.engine.reader import BoundedReader, Range
from streams.engine.runner import StageRunner
from streams.engine.stages import StreamStages
from streams.engine.state_store import StateStore

# Messages folded between two cuts of one partition: a cut closes windows and frees their rows.
CUT_EVERY = 10_000


class Unwritten(BatchSink):
    """A sink an offline run's cuts name but that writes nothing: the rows stay in the cut."""

    name = "unwritten"

    async def write(self, batch: Sequence[Row]) -> None:
        return None


class NothingSaved(StateStore):
    """An offline run starts where a worker without saved state starts."""

    def __init__(self) -> None:  # no client: an offline run reads no store and writes none
        pass

    async def load(self, topic: str, partition: int) -> dict[str, Any]:
        return {}


def discarding_sinks(**tables: BatchSink) -> StageSinks:
    """Sinks that write nothing: one `Unwritten` for every table and topic but `tables`."""
    unwritten = Unwritten()
    return StageSinks({**dict.fromkeys(TABLES, unwritten), **tables}, unwritten, unwritten)


@dataclass(frozen=True, slots=True)
class _Forward:
    """A router's forward or watermark as the window stage reads it from a re-key topic."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int = -1


Progress = Callable[[int], None]


class OfflineFeed:
    """Feeds `stages` the ranges read by `reader`, through one runner; hands every cut to
    `on_cut`."""

    def __init__(
        self,
        stages: StreamStages,
        reader: BoundedReader,
        on_cut: Callable[[Cut], None],
        progress: Progress | None,
    ) -> None:
        self._stages = stages
        self._runner = StageRunner(stages.all)
        self._reader = reader
        self._on_cut = on_cut
        self._progress = progress
        self.messages = 0

    def _read(self, count: int) -> None:
        self.messages += count
        if self._progress is not None:
            self._progress(count)

    def _cut(self, stage: Stage) -> None:
        cut = Cut()
        stage.cut(cut, 0.0)
        self._on_cut(cut)

    async def fold_partition(
        self,
        tp: TopicPartition,
        start: int,
        stop: int,
        trim: Callable[[ConsumerRecord], ConsumerRecord | None] | None = None,
        finish: Callable[[Stage], None] | None = None,
    ) -> None:
        """Fold `tp`'s messages in [start, stop) into a fresh state of the partition, with the
        stage reading its topic, then cut it a last time and let it go. `trim` gives what of a
        record to fold (None: nothing); `finish` adjusts the state before the last cut."""
        runner = self._runner
        stage = runner.stage(tp.topic)
        await stage.assign(tp.partition)
        stage.starts_at(tp.partition, start)
        runner.fold_batch(tp, [])  # a partition with nothing to fold still saves its meta
        pending = 0
        async for _, batch in self._reader.read({tp: (start, stop)}):
            self._read(len(batch))
            if trim is not None:
                batch = [kept for r in batch if (kept := trim(r)) is not None]
            runner.fold_batch(tp, batch)
            pending += len(batch)
            if pending >= CUT_EVERY:
                self._cut(stage)
                pending = 0
        if finish is not None:
            finish(stage)
            runner.fold_batch(tp, [])
        self._cut(stage)
        stage.revoke(tp.partition)

    async def fold_routed(self, ranges: Mapping[TopicPartition, Range]) -> None:
        """Fold every input range into fresh state, partitions interleaved as they are read;
        a re-keyed stream's forwards go to the window stage's partition 0 in memory. The
        window stage is cut after every batch; its partitions stay assigned."""
        runner, router, windows = self._runner, self._stages.router, self._stages.windows
        if router is not None:
            await windows.assign(0)
            windows.starts_at(0, 0)
        first = router or windows
        for tp, (start, _) in sorted(ranges.items()):
            await first.assign(tp.partition)
            first.starts_at(tp.partition, start)
        by_group = TopicPartition(windows.topic, 0)  # the in-memory re-key partition
        next_offset = 0
        async for tp, batch in self._reader.read(ranges):
            self._read(len(batch))
            runner.fold_batch(tp, batch)
            if router is not None:
                cut = Cut()
                router.cut(cut, 0.0)
                assert self._stages.forwards is not None
                routed = [
                    _Forward(next_offset + n, r["key"], r["value"], r["headers"])
                    for n, r in enumerate(cut.writes.get((Step.TOPICS, self._stages.forwards), []))
                ]
                next_offset += len(routed)
                runner.fold_batch(by_group, routed)
            self._cut(windows)
