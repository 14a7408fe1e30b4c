"""One way to make a stream's stages: the live worker (streams/app.py), `vtops reprocess` and
`vtops offsets reset`'s rebuild all get them here, so an offline run folds with the wiring the
worker folds with.

A stream whose windows live on its input's partitions (camera events) has one stage, the window
stage reading its input. A re-keyed stream (payments, portal) has two: the router reads the
input and forwards each event by window group to the re-key topic, which the window stage reads
(streams/engine/route_stage.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sinks.base import BatchSink
from streams.engine.checkpoint import HighWater, Stage, StageSinks
from streams.engine.definition import DomainStream
from streams.engine.route_stage import RouteStage
from streams.engine.state_store import StateStore
from streams.engine.window_stage import WindowStage
from streams.settings import StreamSettings


@dataclass(frozen=True)
class StreamStages:
    """A stream's stages; `forwards` is where its router writes (None without a router)."""

    router: RouteStage | None
    windows: WindowStage[Any, Any]
    forwards: BatchSink | None

    @property
    def all(self) -> list[Stage]:
        """Router first: a checkpoint writes its forwards before the window stage's rows."""
        return [self.windows] if self.router is None else [self.router, self.windows]


def stream_stages(
    stream: DomainStream[Any, Any],
    source: str,
    by_group: str | None,
    sinks: StageSinks,
    forwards: BatchSink | None,
    store: StateStore,
    client_config: dict[str, Any],
    settings: StreamSettings,
    highwater: HighWater,
    partitions_of: Callable[[str], int | None],
) -> StreamStages:
    """The stages of `stream` reading `source` (and `by_group`, its re-key topic, with the
    router's `forwards` going there when it is re-keyed). `sinks` are the window stage's; the
    router shares its tables and dead letters. `partitions_of` tells the router how many
    partitions its topics have, for watermarks; None for a topic not known yet."""
    router = None
    window_source = source
    if stream.rekeyed:
        if by_group is None or forwards is None:
            raise ValueError(f"{stream.name}: a re-keyed stream needs its re-key topic")
        window_source = by_group
        router = RouteStage(
            stream,
            source,
            by_group,
            StageSinks(sinks.tables, forwards, sinks.dead_letter_topic),
            store,
            settings.max_clock_skew_s,
            settings.idle_partition_s,
            highwater,
            partitions_of,
        )
    windows: WindowStage[Any, Any] = WindowStage(
        stream,
        window_source,
        sinks,
        store,
        client_config,
        settings.max_clock_skew_s,
        highwater,
        input_topic=source,
    )
    return StreamStages(router, windows, forwards if router is not None else None)
