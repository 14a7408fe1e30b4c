"""One producer's fast clock must not make its partition-mates late (contract v1.2, section 5).

Stream time is the largest event time an input partition has seen, except that one producer
(the key its events carry: a camera, a payment terminal, a dossier; each stream names it in
`Assignment.producer`) counts at most `lead_ms` ahead of the most advanced *other* producer of
the partition. A camera whose clock runs ten minutes fast thus moves its partition's stream
time only `lead_ms` past the honest cameras, and their events keep all but `lead_ms` of their
grace. Its own events are not refused: they count, in the windows their times name, and each
is counted in `vtops_events_ahead_total`, so the operator can find it. The window stage bounds
its own partition's stream time (streams/engine/windows.py); for a re-keyed stream the router
bounds the input partition's, which every forward carries (streams/engine/route_stage.py).
A second producer agreeing with the leader (a partition catching up after an outage, every
camera at once) lifts the bound at once.

`lead_ms` is half the stream's grace: honest events keep at least half of it. A partition that
has heard only one producer so far follows it: there is nobody to protect yet. Nor does a
producer that has gone silent hold the leader back: once the leader has sent SILENT_AFTER
events in a row, nobody else speaking, it is followed (a partition whose other cameras went
dark must still tick, or their outage would raise nothing). Counted in events, not wall time,
so a replay judges the same.

The two most advanced producers are all it takes to know the bound, so memory does not grow
with the number of producers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SILENT_AFTER = 50  # events of the leader alone, after which the others count as silent


@dataclass
class Leaders:
    """The most advanced producer of an input partition and the most advanced other one."""

    leader: str | None = None
    leader_ms: int | None = None
    runner_up_ms: int | None = None  # the latest time of any producer but the leader
    alone: int = 0  # the leader's events since another producer last spoke

    # Once per event: comparisons rather than calls to min() and max() (issue 20).

    def see(self, producer: str, ts_ms: int) -> None:
        if self.leader is None or self.leader_ms is None or producer == self.leader:
            self.leader = producer
            if self.leader_ms is None or ts_ms > self.leader_ms:
                self.leader_ms = ts_ms
            self.alone += 1
            return
        self.alone = 0
        if ts_ms > self.leader_ms:
            self.leader, self.leader_ms, self.runner_up_ms = producer, ts_ms, self.leader_ms
        elif self.runner_up_ms is None or ts_ms > self.runner_up_ms:
            self.runner_up_ms = ts_ms

    def allow(self, producer: str, ts_ms: int, lead_ms: int) -> int:
        """See an event; the time stream time may move to now: the bound, which is below
        `ts_ms` when its producer runs ahead of the others by more than `lead_ms`, and may be
        above it when a late-comer's event lets the leader's held-back time count."""
        self.see(producer, ts_ms)
        allowed = self.bound(lead_ms)
        assert allowed is not None  # an event was just seen
        return allowed

    def bound(self, lead_ms: int) -> int | None:
        """The stream time these producers allow: the leader's time, at most `lead_ms` past
        the runner-up's while the others speak; None before any event."""
        if self.leader_ms is None or self.runner_up_ms is None or self.alone > SILENT_AFTER:
            return self.leader_ms
        held_ms = self.runner_up_ms + lead_ms
        return held_ms if held_ms < self.leader_ms else self.leader_ms

    def to_state(self) -> list[Any]:
        return [self.leader, self.leader_ms, self.runner_up_ms, self.alone]

    @classmethod
    def from_state(cls, state: list[Any] | None) -> Leaders:
        """From `to_state`; a state saved before the bound existed has none."""
        return cls() if state is None else cls(*state)


def lead_of(grace_ms: int) -> int:
    """How far one producer may run ahead of the others: half the stream's grace."""
    return grace_ms // 2
