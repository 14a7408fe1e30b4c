"""Event-time windows with grace, lateness and `event_id` dedup for one partition of a stage.

This is the contract's section 5 as plain, synchronous code: the engine feeds it events in
offset order and the checkpoint drains it. One `PartitionWindows` per partition the window
stage reads, because a window's group lives on one partition of that topic.

Lateness is judged by the stream time of the *input* partition that carried an event (contract
v1.1). For a stream read straight from its contract topic that is this partition's own stream
time. For a re-keyed stream the routing stage carries it along with each event (`source_time`),
and the windows close by `InputClocks`: once every input partition has passed a window's end
plus grace. Either way the result does not depend on the order partitions are drained in.

Dedup remembers the ids of the events folded into windows that are still open. An id stays
known for as long as its window accepts events; a copy arriving after that is late anyway.
It remembers each by its `dedup_key`: the 16 bytes an id of 32 lower-case hex digits spells,
any other id as itself.

Each state type here saves and restores itself (`to_state`, and `from_state` or `restore`): a
state's saved format sits beside the state. Which `stream_state` entry holds what is the window
stage's business; the ids are never saved (streams/engine/restore.py re-reads them).
"""

from __future__ import annotations

from binascii import unhexlify
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from streams.engine.lead import Leaders, lead_of

A = TypeVar("A")

# A window is identified by its group (camera, ward and category, agency and procedure) and start.
Group = tuple[str, ...]
WindowKey = tuple[Group, int]

# How dedup holds an event id (`dedup_key`).
DedupKey = bytes | str


def dedup_key(event_id: str) -> DedupKey:
    """The id as dedup holds it: an id of 32 lower-case hex digits (the simulator's, a UUID's
    hex) as the 16 bytes it spells, any other id as itself.

    Dedup holds every id of a window and its grace (3.6 million at 20,000 events/s): a
    16-byte `bytes` takes 56 bytes of memory against a 32-character string's 88, and its hash
    is cached like a string's. Exact: ids are case-sensitive strings (contract section 4), so
    only the one lower-case spelling of each 16 bytes becomes them (the round trip through
    `hex()` refuses "0X…", upper case and anything `unhexlify` would read the same), and
    `bytes` never equal a `str`, so a converted id never meets an unconverted one.
    """
    if len(event_id) == 32:
        try:
            packed = unhexlify(event_id)
        except ValueError:  # not hex, or not ASCII
            return event_id
        if packed.hex() == event_id:
            return packed
    return event_id


@dataclass
class Window(Generic[A]):
    group: Group
    start_ms: int
    end_ms: int
    acc: A
    first_offset: int
    last_offset: int
    # Ids folded into this window (`dedup_key`s), so that closing it forgets them; rebuilt on
    # restore.
    event_ids: list[DedupKey] = field(default_factory=list)
    # Folded into since its partition's changes were last taken (`PartitionWindows.dirty`).
    changed: bool = field(default=False, compare=False, repr=False)

    @property
    def key(self) -> WindowKey:
        return (self.group, self.start_ms)

    def to_state(self, acc_to_state: Callable[[A], dict[str, Any]]) -> dict[str, Any]:
        """The window as its saved entry keeps it; not its ids, which restore re-reads."""
        return {
            "group": list(self.group),
            "start": self.start_ms,
            "end": self.end_ms,
            "first": self.first_offset,
            "last": self.last_offset,
            "acc": acc_to_state(self.acc),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], acc_from_state: Callable[[Group, dict[str, Any]], A]
    ) -> Window[A]:
        group = tuple(state["group"])
        return cls(
            group,
            state["start"],
            state["end"],
            acc_from_state(group, state["acc"]),
            state["first"],
            state["last"],
        )


@dataclass
class PartitionCounters:
    """Running totals since the partition's first event; they survive restarts in the state."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0
    # Messages kept as records outside any window (camera status reports).
    recorded: int = 0
    # Events whose producer ran further ahead of the partition's others than the lead bound
    # (streams/engine/lead.py): counted in their windows, stream time held back.
    ahead: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class InputClock:
    """What a window stage knows of one input partition of a re-keyed stream."""

    stream_time_ms: int | None = None
    # The highest input offset whose event reached this stage: a router that restarts
    # re-forwards what it had not recorded, and those copies are skipped by offset.
    offset: int = -1
    # Caught up and silent for a while (streams/engine/route_stage.py): stops holding windows.
    idle: bool = False

    def advance(self, stream_time_ms: int) -> None:
        if self.stream_time_ms is None or stream_time_ms > self.stream_time_ms:
            self.stream_time_ms = stream_time_ms

    def heard(self, offset: int, stream_time_ms: int) -> None:
        """The event the input partition had at `offset` reached this stage, its partition's
        stream time then `stream_time_ms`."""
        self.offset = offset
        self.idle = False
        self.advance(stream_time_ms)


@dataclass
class InputClocks:
    """The stream times of every input partition feeding one partition of a re-keyed stage."""

    partitions: int = 0  # how many input partitions there are, as the routers last said
    clocks: dict[int, InputClock] = field(default_factory=dict)

    def clock(self, partition: int) -> InputClock:
        found = self.clocks.get(partition)
        if found is None:
            found = self.clocks[partition] = InputClock()
        return found

    def watermark(self) -> int | None:
        """The stream time every busy input partition has passed; None while one is unknown.

        Idle partitions are left out; when all are idle, windows close by the latest of them.
        """
        if self.partitions == 0 or any(p not in self.clocks for p in range(self.partitions)):
            return None
        clocks = [self.clocks[p] for p in range(self.partitions)]
        busy = [c.stream_time_ms for c in clocks if not c.idle]
        if busy:
            return None if None in busy else min(t for t in busy if t is not None)
        known = [c.stream_time_ms for c in clocks if c.stream_time_ms is not None]
        return max(known) if known else None

    def to_state(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "clocks": {
                str(p): [c.stream_time_ms, c.offset, c.idle] for p, c in self.clocks.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InputClocks:
        return cls(
            state["partitions"],
            {int(p): InputClock(t, o, idle) for p, (t, o, idle) in state["clocks"].items()},
        )


@dataclass
class PartitionWindows(Generic[A]):
    grace_ms: int
    new_acc: Callable[[Group], A]
    # None: the stage reads its contract topic, and this partition's own stream time judges.
    inputs: InputClocks | None = None
    # The largest event time (or carried input stream time) seen on this partition, one
    # producer's lead over the others bounded (streams/engine/lead.py).
    stream_time_ms: int | None = None
    leaders: Leaders = field(default_factory=Leaders)
    # The time windows were last closed by; an event of a window closed by it is late even
    # when its input partition, idle until now, is behind.
    closed_through_ms: int | None = None
    # Offset of the last message folded into this state; replays at or below it are skipped.
    offset: int = -1
    counters: PartitionCounters = field(default_factory=PartitionCounters)
    windows: dict[WindowKey, Window[A]] = field(default_factory=dict)
    # The ids of `windows`' events (`dedup_key`s), for dedup: a set, as every id of a fast live
    # stream is held for a window and its grace (3.6 million at 20,000 events/s); mapped to
    # their window keys, each entry kept a tuple and an int alive too, 250 bytes an id against
    # ~50 (issue 20).
    seen: set[DedupKey] = field(default_factory=set)
    # The windows folded into since `take_changes` last ran, each once by its `changed` flag:
    # a flag read an event, where a set of keys hashed a (group, start) tuple each time.
    dirty: list[Window[A]] = field(default_factory=list)
    # Facts a stream keeps per entity beyond windows (a dossier's due date); persisted as-is.
    keyed: dict[str, Any] = field(default_factory=dict)
    keyed_dirty: set[str] = field(default_factory=set)
    keyed_dropped: set[str] = field(default_factory=set)
    # The stream-time day a stream last swept its keyed state in; not persisted (a sweep only
    # collects what readers already treat as expired).
    swept_day: int | None = None
    # How far one producer may lead the others (streams/engine/lead.py), from `grace_ms`.
    lead_ms: int = field(init=False)

    def __post_init__(self) -> None:
        self.lead_ms = lead_of(self.grace_ms)

    def to_state(self) -> dict[str, Any]:
        """The partition's meta entry: its offset, clocks and counters. Its windows and keyed
        facts are entries of their own (`Window.to_state`), its dedup ids are not saved."""
        return {
            "offset": self.offset,
            "stream_time": self.stream_time_ms,
            "closed_through": self.closed_through_ms,
            "leaders": self.leaders.to_state(),
            "counters": self.counters.as_dict(),
            "inputs": None if self.inputs is None else self.inputs.to_state(),
        }

    def restore(self, meta: dict[str, Any]) -> None:
        """Take back the meta entry `to_state` made (a state saved before a field existed
        lacks it); a fresh state keeps its own input clocks when the entry has none."""
        self.offset = meta["offset"]
        self.stream_time_ms = meta["stream_time"]
        self.closed_through_ms = meta.get("closed_through")
        self.leaders = Leaders.from_state(meta.get("leaders"))
        self.counters = PartitionCounters(**meta["counters"])
        if meta.get("inputs") is not None:
            self.inputs = InputClocks.from_state(meta["inputs"])

    def is_late(
        self,
        end_ms: int,
        ts_ms: int,
        source_time_ms: int | None = None,
        producer: str | None = None,
    ) -> bool:
        """Advance stream time by the event; True, and counted, when that closes its window.

        `source_time_ms` is the stream time of the input partition that carried the event, as
        its routing stage saw it; None when this partition is that input partition, and then
        `producer` says who sent it (its lead over the others is bounded). Lateness is judged
        before dedup: a copy of an event whose window its input partition has passed is late,
        whatever else this partition has seen.
        """
        if source_time_ms is None:
            self.advance(ts_ms, producer)
            judged_by = self.stream_time_ms
        else:
            self.advance(source_time_ms)
            judged_by = max(source_time_ms, self.closed_through_ms or source_time_ms)
        if self._closes(end_ms, judged_by):
            self.counters.late += 1
            return True
        return False

    def is_new(self, event_id: DedupKey) -> bool:
        """False, and counted, for the id (`dedup_key`) of an event already folded into an
        open window."""
        if event_id in self.seen:
            self.counters.duplicates += 1
            return False
        return True

    def advance(self, ts_ms: int, producer: str | None = None) -> None:
        """Stream time by an event of `producer`, or by a stream time carried along (None)."""
        if producer is not None:
            allowed = self.leaders.allow(producer, ts_ms, self.lead_ms)
            if allowed < ts_ms:
                self.counters.ahead += 1
            ts_ms = allowed
        if self.stream_time_ms is None or ts_ms > self.stream_time_ms:
            self.stream_time_ms = ts_ms

    def closing_time_ms(self) -> int | None:
        """The time that closes windows: this partition's stream time, or for a re-keyed stage
        the stream time every input partition has passed."""
        return self.stream_time_ms if self.inputs is None else self.inputs.watermark()

    def _closes(self, end_ms: int, by_ms: int | None) -> bool:
        return by_ms is not None and end_ms + self.grace_ms <= by_ms

    def admit(
        self, event_id: DedupKey, group: Group, start_ms: int, end_ms: int, offset: int
    ) -> Window[A]:
        """The open window a new, timely event folds into (callers ask `is_late`, `is_new`
        with the same `dedup_key`)."""
        key = (group, start_ms)
        window = self.windows.get(key)
        if window is None:
            window = Window(group, start_ms, end_ms, self.new_acc(group), offset, offset)
            self.windows[key] = window
        window.last_offset = offset
        window.event_ids.append(event_id)
        self.seen.add(event_id)
        if not window.changed:
            window.changed = True
            self.dirty.append(window)
        self.counters.accepted += 1
        return window

    def take_changes(self) -> tuple[list[Window[A]], list[Window[A]]]:
        """(windows changed and still open, windows that closed), clearing both from the state.

        Closed windows leave the state with their ids; their final rows are the caller's job.
        """
        closing = self.closing_time_ms()
        closed = [w for w in self.windows.values() if self._closes(w.end_ms, closing)]
        if closing is not None and self.inputs is not None:
            self.closed_through_ms = max(closing, self.closed_through_ms or closing)
        for window in closed:
            del self.windows[window.key]
            self.seen.difference_update(window.event_ids)
        for window in self.dirty:
            window.changed = False
        changed = [w for w in self.dirty if not self._closes(w.end_ms, closing)]
        self.dirty = []
        return changed, closed

    def put_keyed(self, key: str, value: Any) -> None:
        self.keyed[key] = value
        self.keyed_dirty.add(key)
        self.keyed_dropped.discard(key)

    def drop_keyed(self, key: str) -> None:
        if self.keyed.pop(key, None) is not None:
            self.keyed_dirty.discard(key)
            self.keyed_dropped.add(key)

    def take_keyed_changes(self) -> tuple[dict[str, Any], list[str]]:
        changed = {key: self.keyed[key] for key in self.keyed_dirty}
        dropped = list(self.keyed_dropped)
        self.keyed_dirty, self.keyed_dropped = set(), set()
        return changed, dropped

    def remember(self, event_id: DedupKey, key: WindowKey, offset: int) -> None:
        """Re-learn that the event at `offset` was folded into an open window (on restore); its
        id as `dedup_key` gives it. No state holds ids, so one saved by any version restores."""
        window = self.windows.get(key)
        if (
            window is not None
            and window.first_offset <= offset <= window.last_offset
            and event_id not in self.seen
        ):
            self.seen.add(event_id)
            window.event_ids.append(event_id)

    def open_windows(self) -> Iterator[Window[A]]:
        return iter(self.windows.values())
