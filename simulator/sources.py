"""What an event source is, so that payments and portal can join camera traffic later.

A source turns a slice of city time into events for one contract topic. The producer asks
every source for the same slice, merges them by time and sends them; it knows nothing about
cameras. To add a source: implement EventSource (see traffic.CameraTraffic) and pass it to
`producer.run` next to the others.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from operator import attrgetter
from random import Random
from typing import NamedTuple, Protocol


class SimEvent(NamedTuple):
    topic: str  # contract topic, without the run's prefix (city.topics)
    key: str  # the contract's key for the topic: camera_id, terminal_id, dossier_id
    value: dict[str, object]  # the JSON value, exactly per contract section 4
    kind: str  # what the run summary counts it as: "passage", "status", ...
    ts_ms: int  # event time, for merging sources in time order


class Load(NamedTuple):
    """Mean events per city second at rate scale 1: `scaled` grows with the scale, `fixed`
    (heartbeats and the like) does not."""

    scaled: float
    fixed: float


class EventSource(Protocol):
    @property
    def topic(self) -> str: ...

    def natural_load(self, start_ms: int, end_ms: int) -> Load:
        """The source's own mean load over [start_ms, end_ms)."""
        ...

    def events(self, start_ms: int, end_ms: int, rate_scale: float) -> Iterator[SimEvent]:
        """Events with start_ms <= ts_ms < end_ms, in time order."""
        ...


def total_load(sources: Sequence[EventSource], start_ms: int, end_ms: int) -> Load:
    """All sources' mean load over [start_ms, end_ms), at rate scale 1."""
    loads = [source.natural_load(start_ms, end_ms) for source in sources]
    return Load(sum(load.scaled for load in loads), sum(load.fixed for load in loads))


def rate_scale_for(
    sources: Sequence[EventSource], target_rate: float, start_ms: int, end_ms: int
) -> float:
    """The scale that makes all sources together average `target_rate` events per city second
    over [start_ms, end_ms); fixed loads (heartbeats) are not scaled: at or below them, 0."""
    load = total_load(sources, start_ms, end_ms)
    if load.scaled <= 0:
        return 1.0
    return max(0.0, (target_rate - load.fixed) / load.scaled)


def merged_events(
    sources: Sequence[EventSource], start_ms: int, end_ms: int, rate_scale: float
) -> Iterator[SimEvent]:
    """Every source's events for one slice, merged in time order."""
    streams = [source.events(start_ms, end_ms, rate_scale) for source in sources]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=attrgetter("ts_ms"))


def source_rng(seed: int, topic: str) -> Random:
    """Each source draws from its own stream of the run's seed, so that adding a source (or
    changing another's draws) leaves the camera events of a seed unchanged."""
    return Random(f"{seed}/{topic}")
