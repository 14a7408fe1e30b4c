"""Event-time windows with grace, lateness and `event_id` dedup for one input partition.

This is the contract's section 5 as plain, synchronous code: the Faust agent feeds it events
in offset order and the checkpoint drains it. One `PartitionWindows` per input partition,
because stream time belongs to the owner of a key and a key lives on one partition.

Dedup remembers the ids of the events folded into windows that are still open. An id stays
known for as long as its window accepts events; a copy arriving after that is late anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

A = TypeVar("A")

# A window is identified by its group (camera, ward and category, agency and procedure) and start.
Group = tuple[str, ...]
WindowKey = tuple[Group, int]


@dataclass
class Window(Generic[A]):
    group: Group
    start_ms: int
    end_ms: int
    acc: A
    first_offset: int
    last_offset: int
    # Ids folded into this window, so that closing it forgets them; rebuilt on restore.
    event_ids: list[str] = field(default_factory=list)

    @property
    def key(self) -> WindowKey:
        return (self.group, self.start_ms)


@dataclass
class PartitionCounters:
    """Running totals since the partition's first event; they survive restarts in the state."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class PartitionWindows(Generic[A]):
    grace_ms: int
    new_acc: Callable[[Group], A]
    stream_time_ms: int | None = None
    # Offset of the last message folded into this state; replays at or below it are skipped.
    offset: int = -1
    counters: PartitionCounters = field(default_factory=PartitionCounters)
    windows: dict[WindowKey, Window[A]] = field(default_factory=dict)
    seen: dict[str, WindowKey] = field(default_factory=dict)
    dirty: set[WindowKey] = field(default_factory=set)
    # Facts a stream keeps per entity beyond windows (a dossier's due date); persisted as-is.
    keyed: dict[str, Any] = field(default_factory=dict)
    keyed_dirty: set[str] = field(default_factory=set)
    keyed_dropped: set[str] = field(default_factory=set)

    def is_new(self, event_id: str) -> bool:
        """False, and counted, for the id of an event already folded into an open window."""
        if event_id in self.seen:
            self.counters.duplicates += 1
            return False
        return True

    def advance(self, ts_ms: int) -> None:
        if self.stream_time_ms is None or ts_ms > self.stream_time_ms:
            self.stream_time_ms = ts_ms

    def is_closed(self, end_ms: int) -> bool:
        """A window accepts events until stream time reaches its end plus grace."""
        return self.stream_time_ms is not None and end_ms + self.grace_ms <= self.stream_time_ms

    def admit(
        self, event_id: str, group: Group, start_ms: int, end_ms: int, ts_ms: int, offset: int
    ) -> Window[A] | None:
        """The open window a new event folds into, or None for a late event (counted).

        Callers ask `is_new` first: a duplicate changes nothing, not even stream time.
        """
        self.advance(ts_ms)
        if self.is_closed(end_ms):
            self.counters.late += 1
            return None
        key = (group, start_ms)
        window = self.windows.get(key)
        if window is None:
            window = Window(group, start_ms, end_ms, self.new_acc(group), offset, offset)
            self.windows[key] = window
        window.last_offset = offset
        window.event_ids.append(event_id)
        self.seen[event_id] = key
        self.dirty.add(key)
        self.counters.accepted += 1
        return window

    def take_changes(self) -> tuple[list[Window[A]], list[Window[A]]]:
        """(windows changed and still open, windows that closed), clearing both from the state.

        Closed windows leave the state with their ids; their final rows are the caller's job.
        """
        closed = [w for w in self.windows.values() if self.is_closed(w.end_ms)]
        for window in closed:
            del self.windows[window.key]
            self.dirty.discard(window.key)
            for event_id in window.event_ids:
                del self.seen[event_id]
        changed = [self.windows[key] for key in self.dirty]
        self.dirty = set()
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

    def remember(self, event_id: str, key: WindowKey, offset: int) -> None:
        """Re-learn that the event at `offset` was folded into an open window (on restore)."""
        window = self.windows.get(key)
        if (
            window is not None
            and window.first_offset <= offset <= window.last_offset
            and event_id not in self.seen
        ):
            self.seen[event_id] = key
            window.event_ids.append(event_id)

    def open_windows(self) -> Iterator[Window[A]]:
        return iter(self.windows.values())
