"""The streams a replay command works on, with their topics as the broker names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from city import topics
from city.profile import load_city_profile
from streams.app import by_group_topic, domain_streams
from streams.engine.definition import DomainStream
from streams.traffic.anomaly.baselines import NO_BASELINES, BaselineSource
from vtops.replay.exceptions import ReplayError
from vtops.settings import Settings


@dataclass(frozen=True)
class StreamTopics:
    stream: DomainStream[Any, Any]
    source: str  # the contract's input topic
    by_group: str | None  # the internal re-key topic of a re-keyed stream
    dead_letters: str  # the input's DLQ topic

    @property
    def consumed(self) -> list[str]:
        """The topics the worker reads for this stream, input first."""
        return [self.source] if self.by_group is None else [self.source, self.by_group]


def _names(stream: DomainStream[Any, Any]) -> set[str]:
    # The stream's name, or the first word of its input topic: `traffic` or `camera`.
    return {stream.name, stream.source_topic.split(".")[0]}


def chosen_streams(
    settings: Settings, streams: str | None, baselines: BaselineSource = NO_BASELINES
) -> list[StreamTopics]:
    """The streams named in `streams` (comma-separated), every stream when None. A command
    that folds traffic as the worker does (an offset reset's rebuild) passes the store's
    baselines, so that the anomaly state it rebuilds is the worker's."""
    profile = load_city_profile(settings.stream.city_profile)
    every = domain_streams(settings.stream, profile, baselines)
    wanted = None if streams is None else {n.strip() for n in streams.split(",") if n.strip()}
    if wanted is not None:
        unknown = wanted - set().union(*(_names(s) for s in every))
        if unknown or not wanted:
            known = ", ".join(sorted(set().union(*(_names(s) for s in every))))
            raise ReplayError(f"--streams: unknown stream {sorted(unknown)} (known: {known})")
    kafka = settings.kafka
    return [
        StreamTopics(
            stream,
            kafka.topic(stream.source_topic),
            by_group_topic(kafka, stream.name) if stream.rekeyed else None,
            kafka.topic(topics.dead_letters_of(stream.source_topic)),
        )
        for stream in every
        if wanted is None or wanted & _names(stream)
    ]
