"""What a domain stream tells the engine: how to read an event, where it goes, how it folds.

The rest of the engine (streams/engine/) owns Kafka, checkpoints and sinks; a domain stream
(traffic, payments, portal) is pure logic behind this protocol, so unit tests drive it directly.
Each fact is stated once: `assign` says an event's id, window and event time, `fold` what it adds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from msgspec import Struct

from streams.engine.windows import Group, PartitionWindows, Window, WindowKey

A = TypeVar("A")
E = TypeVar("E")

Row = dict[str, Any]

NO_RECORD_TOPICS: Mapping[str, tuple[str, str]] = MappingProxyType({})


@dataclass
class Records:
    """Rows a stream emits besides its windows (violations, camera status), by table."""

    by_table: defaultdict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))

    def add(self, table: str, row: Row) -> None:
        self.by_table[table].append(row)

    def drain(self) -> dict[str, list[Row]]:
        drained, self.by_table = dict(self.by_table), defaultdict(list)
        return drained


def route_key(group: Group) -> str:
    """A window group as the key of its forwards on the re-key topic (what the partitioner
    hashes)."""
    return "|".join(group)


# One is made per event: a msgspec struct, whose `__init__` is C's where a dataclass's is a
# Python function's (a frozen dataclass's cost 1.4 µs, a plain one 0.5; issue 20), and which
# the garbage collector need not track (it holds strings, ints and a tuple of strings).
class Assignment(Struct, gc=False):
    """Where a windowed event belongs: its identity, its window and its event time."""

    event_id: str
    group: Group
    start_ms: int
    end_ms: int
    event_time_ms: int
    # Who sent it, where one producer's lead over the others on its input partition is bounded
    # (streams/engine/lead.py): the camera, the terminal, the dossier (the input's key).
    producer: str | None = None

    @property
    def window_key(self) -> WindowKey:
        return (self.group, self.start_ms)


class DomainStream(Protocol[E, A]):
    name: str
    source_topic: str
    output_topic: str
    output_key: str  # the window row field that keys the output topic
    window_table: str
    # The event field that `assign` takes event time from, named in far-future dead letters.
    event_time_field: str
    # True when window groups span the input's partitions: a routing stage re-keys it first.
    rekeyed: bool
    # The event field a message's key must be (contract section 3), where the key decides the
    # partition that holds the event's windows; None for a re-keyed stream.
    key_field: str | None
    # Record tables whose rows also go to a topic: table -> (topic, the row field keying it).
    record_topics: Mapping[str, tuple[str, str]]

    def decode(self, raw: bytes | None) -> E:
        """The valid event in a message value; InvalidEvent naming the field otherwise."""

    def assign(self, event: E) -> Assignment | None:
        """The event's window; None for an event that is recorded but not windowed."""

    def new_state(self) -> PartitionWindows[A]: ...

    def fold(
        self,
        state: PartitionWindows[A],
        event: E,
        window: Window[A] | None,
        records: Records,
    ) -> None:
        """Add a new (not duplicate) event: to `window`, or None when it is late or unwindowed."""

    def window_row(self, window: Window[A], final: bool) -> Row:
        """The window's row for ClickHouse and the output topic, without `version`."""

    def acc_to_state(self, acc: A) -> dict[str, Any]: ...

    def acc_from_state(self, group: Group, state: dict[str, Any]) -> A:
        """The accumulator `acc_to_state` saved, for the window of `group`."""
