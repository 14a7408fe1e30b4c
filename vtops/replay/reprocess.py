"""`vtops reprocess`: recompute the windows that start in [T1, T2) from the input topics with
this release's code and settings, and replace their rows, while a live worker goes on.

The worker's own stages (streams/engine/stages.py) fold every retained message of the chosen
streams into fresh state, outside the worker (streams/engine/offline.py: nothing goes to the
topics or `stream_state`), so each window comes out as a fresh run with today's settings would
write it. This module says what is recomputed and keeps the window rows of the cuts.

Versions stay monotonic across runs: a reprocessed row carries `epoch << 40 | 2 × last offset
+ final`, the epoch one above the highest in its table, so it replaces every row the worker or
an earlier reprocessing wrote (the worker's versions stay below 2^40: offsets below 5 × 10^11).
Which rows are replaced or deleted is vtops/replay/replacement.py's job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from streams.engine.checkpoint import Cut, Step
from streams.engine.offline import NothingSaved, OfflineFeed, Unwritten, discarding_sinks
from streams.engine.reader import BoundedReader, ReaderError
from streams.engine.stages import stream_stages
from streams.engine.window_stage import WindowStage
from streams.settings import StreamSettings
from vtops.replay.exceptions import ReplayError
from vtops.replay.replacement import Recomputed
from vtops.replay.selection import StreamTopics

_BATCH = 10_000

Progress = Callable[[int], None]


class Recompute:
    """Folds the retained input of streams into fresh state with the worker's stages."""

    def __init__(
        self, settings: StreamSettings, client_config: dict[str, Any], key_columns: list[str]
    ) -> None:
        self._settings = settings
        self._client_config = client_config
        self._key_columns = key_columns
        self._collect = Unwritten()  # the window rows, read from each cut

    async def stream(
        self,
        topics: StreamTopics,
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        progress: Progress,
    ) -> Recomputed:
        stream = topics.stream
        result = Recomputed(stream.window_table)
        inputs = sorted(tp.partition for tp in ends if tp.topic == topics.source)
        stages = stream_stages(
            stream,
            topics.source,
            topics.by_group,
            discarding_sinks(**{stream.window_table: self._collect}),
            Unwritten(),
            NothingSaved(),
            self._client_config,
            self._settings,
            lambda _topic, _partition: None,
            lambda topic: len(inputs) if topic == topics.source else 1,
        )
        ranges = {tp: (starts[tp], end) for tp, end in ends.items() if tp.topic == topics.source}
        if all(start >= end for start, end in ranges.values()):
            return result  # nothing to read (a consumer that never fetched fails to stop)

        def keep_rows(cut: Cut) -> None:
            for row in cut.writes.get((Step.WINDOWS, self._collect), []):
                result.rows[tuple(row[c] for c in self._key_columns)] = row

        async with BoundedReader(self._client_config, batch=_BATCH) as reader:
            try:
                await OfflineFeed(stages, reader, keep_rows, progress).fold_routed(ranges)
            except ReaderError as failed:
                raise ReplayError(f"{stream.name}: {failed}") from failed
        partitions = inputs if stages.router is None else [0]
        result.closed_through_ms = _closed_through(stages.windows, partitions)
        return result


def _closed_through(windows: WindowStage[Any, Any], partitions: list[int]) -> int | None:
    """The end time every window ending at or before has closed on all `partitions`: a
    window the fold never opened there was recomputed whole, with no event in it."""
    states = [windows.partition_state(p) for p in partitions]
    closing = [s.closing_time_ms() for s in states]
    if not closing or None in closing:
        return None
    return min(t for t in closing if t is not None) - states[0].grace_ms
