"""`vtops offsets reset`: move where the worker resumes, saved state and group offsets together.

A bare reset of the group's offsets (kafka-consumer-groups --reset-offsets) does nothing here:
the worker resumes each partition at its saved state's offset (streams/engine/service.py).
So a reset rebuilds, for each input partition, the state the worker had just before the
target offset (vtops/replay/rebuild.py), replaces the saved state of the streams' topics with
it, and then moves the group's offsets to match, re-key topics included: those resume at their
end, as the routers send again every event from the target on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from clickhouse_connect.driver.client import Client
from kafka import TopicPartition

from city.settings import KafkaSettings
from streams.app import aiokafka_config
from streams.settings import StreamSettings
from vtops.kafka.offsets import commit_offsets, committed_offsets
from vtops.replay.event_times import locate
from vtops.replay.exceptions import ReplayError
from vtops.replay.positions import Ranges, retained_ranges
from vtops.replay.rebuild import StateRebuild
from vtops.replay.saved_state import replace_state, saved_offsets
from vtops.replay.selection import StreamTopics
from vtops.replay.times import Clock, epoch_ms


@dataclass(frozen=True)
class ResetTarget:
    kind: Literal["earliest", "latest", "datetime"]
    at: datetime | None = None
    clock: Clock = Clock.event

    def __str__(self) -> str:
        if self.at is None:
            return self.kind
        return f"{self.at.isoformat()} ({self.clock.value} time)"


@dataclass(frozen=True)
class PartitionMove:
    """One partition's change: where the worker resumes and the group's offset, old → new."""

    topic: str
    partition: int
    resume_before: int  # from the saved state (the beginning when there is none)
    committed_before: int | None
    resume_after: int
    rekeyed: bool  # a re-key topic: resumes at its end, its windows rebuilt


@dataclass(frozen=True)
class ResetPlan:
    streams: list[StreamTopics]
    moves: list[PartitionMove]
    ranges: Ranges

    @property
    def to_fold(self) -> int:
        """Messages a rebuild reads: inputs up to their targets, re-key topics whole."""
        return sum(
            (self.ranges.end[tp] if m.rekeyed else m.resume_after) - self.ranges.beginning[tp]
            for m in self.moves
            for tp in [TopicPartition(m.topic, m.partition)]
        )

    def targets(self, topics: StreamTopics) -> dict[int, int]:
        return {m.partition: m.resume_after for m in self.moves if m.topic == topics.source}

    def _inputs(self) -> list[tuple[PartitionMove, TopicPartition]]:
        return [(m, TopicPartition(m.topic, m.partition)) for m in self.moves if not m.rekeyed]

    @property
    def replays_everything(self) -> bool:
        """Every input partition resumes at its beginning: a full replay."""
        return all(m.resume_after == self.ranges.beginning[tp] for m, tp in self._inputs())

    @property
    def replays_nothing(self) -> bool:
        """Every input partition resumes at its end: nothing retained is read again."""
        return all(m.resume_after == self.ranges.end[tp] for m, tp in self._inputs())


def plan_reset(
    kafka: KafkaSettings,
    client: Client,
    database: str,
    streams: list[StreamTopics],
    target: ResetTarget,
    max_clock_skew_s: int,
) -> ResetPlan:
    topics = [topic for s in streams for topic in s.consumed]
    ranges = retained_ranges(kafka, topics)
    inputs = [tp for tp in ranges.beginning if tp.topic in {s.source for s in streams}]
    if not inputs:
        raise ReplayError("none of the streams' input topics exists: `vtops topics create`")
    at: dict[TopicPartition, int] = {}
    if target.at is not None:
        at_ms = epoch_ms(target.at)
        at = locate(kafka, streams, ranges, at_ms, target.clock, max_clock_skew_s).offsets
    saved = saved_offsets(client, database, topics)
    committed = committed_offsets(kafka)
    moves = []
    for tp, beginning in ranges.beginning.items():
        end = ranges.end[tp]
        rekeyed = tp not in inputs
        if rekeyed or target.kind == "latest":
            after = end
        elif target.kind == "earliest":
            after = beginning
        else:
            after = at[tp]
        last = saved.get((tp.topic, tp.partition))
        moves.append(
            PartitionMove(
                tp.topic,
                tp.partition,
                beginning if last is None else last + 1,
                committed.get(tp),
                after,
                rekeyed,
            )
        )
    return ResetPlan(streams, moves, ranges)


async def rebuild_state(
    plan: ResetPlan,
    kafka: KafkaSettings,
    stream: StreamSettings,
    progress: Callable[[int], None] | None = None,
) -> StateRebuild:
    """Fold the retained input up to the plan's targets; the rows to save are in `.rows`."""
    rebuild = StateRebuild(stream, aiokafka_config(kafka), progress)
    for topics in plan.streams:
        await rebuild.stream(topics, plan.targets(topics), plan.ranges.beginning, plan.ranges.end)
    return rebuild


def apply_reset(
    plan: ResetPlan, rebuild: StateRebuild, kafka: KafkaSettings, client: Client, database: str
) -> None:
    """Replace the streams' saved state, then the group's offsets (only for lag: if this step
    fails, the worker still resumes where the state says)."""
    replace_state(client, database, [t for s in plan.streams for t in s.consumed], rebuild.rows)
    commit_offsets(
        kafka, {TopicPartition(m.topic, m.partition): m.resume_after for m in plan.moves}
    )
