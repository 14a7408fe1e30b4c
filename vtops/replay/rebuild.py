"""The state a stream's stages would have saved just before target offsets, rebuilt by folding
the retained messages again with the worker's own stages (`vtops offsets reset`).

Why rebuild rather than empty the windows: a window open across the target holds events from
before it, and a worker resuming with empty windows would write that window again with only
the later events, at a version that wins. The state after an offset is a function of the input
alone (streams/engine/state_store.py), so folding the input up to the target gives exactly the
state the worker had there, and resuming from it reproduces the rows it wrote.

A re-keyed stream (payments, portal) has two stages. Its router is rebuilt from its input up to
the target. Its window stage reads the re-key topic, where the router's forwards of every input
offset sit in arrival order: it is rebuilt from the forwards of input offsets before the target
(the others the router sends again; a record carrying forwards on both sides of it is folded
with the earlier ones only), is told every input partition's stream time at the target
(what the routers' watermarks would say), and resumes at the topic's end. Windows that straddle
the target thus keep their earlier events, and nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from schemas.exceptions import InvalidEvent
from streams.engine.checkpoint import Cut, Stage
from streams.engine.offline import NothingSaved, OfflineFeed, Unwritten, discarding_sinks
from streams.engine.reader import BoundedReader, ReaderError
from streams.engine.records import encode_forwards, forwards_of, is_watermark, origin_of
from streams.engine.stages import stream_stages
from streams.engine.state_store import META_KEY, StateRow
from streams.engine.window_stage import WindowStage
from streams.settings import StreamSettings
from vtops.replay.exceptions import ReplayError
from vtops.replay.selection import StreamTopics


class StateRebuild:
    """Rebuilds the saved state of streams, partition by partition; `rows` is the result."""

    def __init__(
        self,
        stream_settings: StreamSettings,
        client_config: dict[str, Any],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._settings = stream_settings
        self._progress = progress
        self._client_config = client_config
        self._rows: dict[tuple[str, int, str], StateRow] = {}
        self.messages = 0

    @property
    def rows(self) -> list[StateRow]:
        """The entries of every rebuilt partition (tombstones of closed windows left out)."""
        return [row for row in self._rows.values() if not row.deleted]

    async def stream(
        self,
        topics: StreamTopics,
        targets: dict[int, int],
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
    ) -> None:
        """Rebuild `topics`' stages so that its input partitions resume at `targets`."""
        stages = stream_stages(
            topics.stream,
            topics.source,
            topics.by_group,
            discarding_sinks(),
            Unwritten(),
            NothingSaved(),
            self._client_config,
            self._settings,
            lambda _topic, _partition: None,
            lambda _topic: None,  # no watermarks: the rebuild sets the clocks itself
        )
        async with BoundedReader(self._client_config) as reader:
            feed = OfflineFeed(stages, reader, self._keep, self._progress)
            try:
                for partition, target in sorted(targets.items()):
                    tp = TopicPartition(topics.source, partition)
                    await feed.fold_partition(tp, starts[tp], target)
                if stages.router is not None:
                    await self._by_group(feed, topics, targets, starts, ends)
            except ReaderError as failed:
                raise ReplayError(f"{topics.stream.name}: {failed}") from failed
            finally:
                self.messages += feed.messages

    async def _by_group(
        self,
        feed: OfflineFeed,
        topics: StreamTopics,
        targets: dict[int, int],
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
    ) -> None:
        assert topics.by_group is not None
        stream_times = {p: self._meta(topics.source, p).get("stream_time") for p in sorted(targets)}
        for partition in sorted(tp.partition for tp in ends if tp.topic == topics.by_group):
            tp = TopicPartition(topics.by_group, partition)  # aiokafka's, not kafka-python's
            end = ends[tp]

            def at_target(stage: Stage, partition: int = tp.partition, end: int = end) -> None:
                assert isinstance(stage, WindowStage)
                state = stage.partition_state(partition)
                assert state.inputs is not None
                state.inputs.partitions = len(targets)
                for input_partition, stream_time in stream_times.items():
                    clock = state.inputs.clock(input_partition)
                    clock.idle = False
                    if stream_time is not None:
                        clock.advance(stream_time)
                state.offset = max(state.offset, end - 1)

            trim = partial(before_targets, targets=targets)
            await feed.fold_partition(tp, starts[tp], end, trim, at_target)

    def _keep(self, cut: Cut) -> None:
        for row in cut.state:
            self._rows[(row.source_topic, row.partition, row.key)] = row

    def _meta(self, topic: str, partition: int) -> dict[str, Any]:
        row = self._rows.get((topic, partition, META_KEY))
        return {} if row is None else dict(orjson.loads(row.state))


def before_targets(record: ConsumerRecord, targets: dict[int, int]) -> ConsumerRecord | None:
    """What of a re-key topic's record the window stage held before the input partitions'
    `targets` (partition -> offset): its forwards of earlier input offsets; None for nothing."""
    if is_watermark(record.headers):
        return None  # its clocks may be past the target: the rebuild sets them
    try:
        forwards = forwards_of(record.headers, record.value)
        origin = None if forwards is not None else origin_of(record.headers)
    except InvalidEvent:
        return record  # a dead letter then, and now again
    if forwards is not None:
        partition, held = forwards
        kept = [forward for forward in held if forward[0] < targets.get(partition, 0)]
        if len(kept) == len(held):
            return record
        return replace(record, value=encode_forwards(kept)) if kept else None
    if origin is None or origin.offset < targets.get(origin.partition, 0):
        return record
    return None
