"""`vtops reprocess`: recompute the windows that start in [T1, T2) from the input topics with
this release's code and settings, and replace their rows, while a live worker goes on.

The worker's own stages fold every retained message of the chosen streams into fresh state,
outside the worker (nothing goes to the topics or `stream_state`), so each window comes out as
a fresh run with today's settings would write it. Re-keyed streams are routed in memory: the
router's forwards and watermarks go straight to one window stage, as the result does not
depend on how windows are spread over partitions.

Versions stay monotonic across runs: a reprocessed row carries `epoch << 40 | 2 × last offset
+ final`, the epoch one above the highest in its table, so it replaces every row the worker or
an earlier reprocessing wrote (the worker's versions stay below 2^40: offsets below 5 × 10^11).
Which rows are replaced or deleted is vtops/replay/replacement.py's job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from sinks.base import BatchSink, Row
from streams.engine.checkpoint import Cut, Stage, StageSinks, Step
from streams.engine.reader import BoundedReader, ReaderError
from streams.engine.route_stage import RouteStage
from streams.engine.window_stage import WindowStage
from streams.settings import StreamSettings
from vtops.replay.exceptions import ReplayError
from vtops.replay.offline import NothingSaved, discarding_sinks
from vtops.replay.replacement import Recomputed
from vtops.replay.selection import StreamTopics

_BATCH = 10_000

Progress = Callable[[int], None]


class _Collect(BatchSink):
    """The window rows of one table, as the cuts give them (never flushed)."""

    name = "collect"

    async def write(self, batch: Sequence[Row]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Forward:
    """A router's forward or watermark as the window stage reads it from a re-key topic."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int = -1


class Recompute:
    """Folds the retained input of streams into fresh state with the worker's stages."""

    def __init__(
        self, settings: StreamSettings, client_config: dict[str, Any], key_columns: list[str]
    ) -> None:
        self._settings = settings
        self._client_config = client_config
        self._key_columns = key_columns
        self._collect = _Collect()

    async def stream(
        self,
        topics: StreamTopics,
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        progress: Progress,
    ) -> Recomputed:
        stream = topics.stream
        sinks = discarding_sinks(**{stream.window_table: self._collect})
        store = NothingSaved()
        result = Recomputed(stream.window_table)
        inputs = sorted(tp.partition for tp in ends if tp.topic == topics.source)
        windows = WindowStage(
            stream,
            topics.by_group or topics.source,
            sinks,
            store,
            self._client_config,
            self._settings.max_clock_skew_s,
            lambda _topic, _partition: None,
        )
        router: RouteStage | None = None
        forwards = _Collect()
        if topics.by_group is not None:
            router = RouteStage(
                stream,
                topics.source,
                topics.by_group,
                StageSinks(sinks.tables, forwards, sinks.dead_letter_topic),
                store,
                self._settings.max_clock_skew_s,
                self._settings.idle_partition_s,
                lambda _topic, _partition: None,
                lambda topic: len(inputs) if topic == topics.source else 1,
            )
            await windows.assign(0)
            windows.starts_at(0, 0)
        for partition in inputs:
            await (router or windows).assign(partition)
            tp = TopicPartition(topics.source, partition)
            (router or windows).starts_at(partition, starts[tp])
        next_offset = 0  # of the in-memory re-key partition
        if all(starts[tp] >= ends[tp] for tp in ends if tp.topic == topics.source):
            return result  # nothing to read (a consumer that never fetched fails to stop)
        ranges = {tp: (starts[tp], end) for tp, end in ends.items() if tp.topic == topics.source}
        async with BoundedReader(self._client_config, batch=_BATCH) as reader:
            try:
                async for tp, batch in reader.read(ranges):
                    progress(len(batch))
                    if router is None:
                        windows.fold(tp.partition, batch)
                    else:
                        router.fold(tp.partition, batch)
                        cut = Cut()
                        router.cut(cut, 0.0)
                        routed = [
                            _Forward(next_offset + n, r["key"], r["value"], r["headers"])
                            for n, r in enumerate(cut.writes.get((Step.TOPICS, forwards), []))
                        ]
                        next_offset += len(routed)
                        windows.fold(0, routed)
                    self._cut(windows, result)
            except ReaderError as failed:
                raise ReplayError(f"{stream.name}: {failed}") from failed
        result.closed_through_ms = _closed_through(windows, [0] if router else inputs)
        return result

    def _cut(self, stage: Stage, result: Recomputed) -> None:
        cut = Cut()
        stage.cut(cut, 0.0)
        for row in cut.writes.get((Step.WINDOWS, self._collect), []):
            result.rows[tuple(row[c] for c in self._key_columns)] = row


def _closed_through(windows: WindowStage[Any, Any], partitions: list[int]) -> int | None:
    """The end time every window ending at or before has closed on all `partitions`: a
    window the fold never opened there was recomputed whole, with no event in it."""
    states = [windows.partition_state(p) for p in partitions]
    closing = [s.closing_time_ms() for s in states]
    if not closing or None in closing:
        return None
    return min(t for t in closing if t is not None) - states[0].grace_ms
