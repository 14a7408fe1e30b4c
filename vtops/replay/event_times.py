"""Where a time falls in an input partition, by one of two clocks.

Operators think in event time (the event's own `ts`, a tally's `period_start`): "reprocess
14:00 to 15:00" means the events of that hour. Kafka's tools find offsets by the message
timestamp (when the message was produced), which can be hours later: data produced after the
fact (a simulator, a backfill, a producer's outage) would be missed whole. So the replay
commands find offsets by event time unless asked for the message timestamp (`--clock kafka`).

In event time, a partition's offset for T is the first message whose event time is at or after
T. Events are nearly ordered (late ones are bounded by the grace, early ones by the clock skew),
so Kafka timestamps narrow the search: no message produced before T - skew can carry an event
at or after T. From there the messages are read and their own times checked; those without a
readable event time (dead letters to be) are passed over.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import TopicPartition

from city.settings import KafkaSettings
from vtops.replay.positions import Ranges, offsets_at, records_between
from vtops.replay.selection import StreamTopics
from vtops.replay.times import Clock


@dataclass(frozen=True)
class Located:
    """Each partition's offset for a time (its end when every message is before it)."""

    offsets: dict[TopicPartition, int]
    ranges: Ranges

    @property
    def selects_everything(self) -> bool:
        return all(self.offsets[tp] == self.ranges.beginning[tp] for tp in self.offsets)

    @property
    def selects_nothing(self) -> bool:
        return all(self.offsets[tp] == self.ranges.end[tp] for tp in self.offsets)


def locate(
    kafka: KafkaSettings,
    streams: list[StreamTopics],
    ranges: Ranges,
    at_ms: int,
    clock: Clock,
    max_clock_skew_s: int,
) -> Located:
    """The offset of `at_ms` on every input partition of `streams` in `ranges`."""
    by_topic = {s.source: s for s in streams}
    tps = sorted(tp for tp in ranges.end if tp.topic in by_topic)
    bound = at_ms if clock is Clock.kafka else at_ms - max_clock_skew_s * 1000
    found = offsets_at(kafka, tps, bound)
    offsets: dict[TopicPartition, int] = {}
    for tp in tps:
        first = found[tp]
        offsets[tp] = ranges.end[tp] if first is None else first
    if clock is Clock.event:
        for tp in tps:
            offsets[tp] = _first_at_or_after(
                kafka, by_topic[tp.topic], tp, offsets[tp], ranges.end[tp], at_ms
            )
    return Located(offsets, ranges)


def _first_at_or_after(
    kafka: KafkaSettings,
    topics: StreamTopics,
    tp: TopicPartition,
    start: int,
    end: int,
    at_ms: int,
) -> int:
    stream = topics.stream
    for record in records_between(kafka, tp, start, end):
        try:
            event_ms = getattr(stream.decode(record.value), stream.event_time_field)
        except Exception:  # a message the worker will dead-letter has no time
            continue
        if event_ms >= at_ms:
            return int(record.offset)
    return end
