"""Stream time per input partition as the contract says it (v1.2, section 5) and the README
words the lead bound, written apart from the engine's code, for the tests' models."""

from __future__ import annotations

from dataclasses import dataclass, field

SILENT_AFTER = 50  # the README: "the leader alone for 50 events"


@dataclass
class InputClock:
    """One input partition's stream time, by the contract's rule (v1.2, section 5)."""

    lead_ms: int
    latest: dict[str, int] = field(default_factory=dict)  # per producer, its latest time
    time_ms: int | None = None
    leader: str | None = None
    alone: int = 0  # the leader's events since another producer spoke

    def advance(self, producer: str, ts_ms: int) -> int:
        if self.leader is None or producer == self.leader:
            self.leader, self.alone = producer, self.alone + 1
        else:
            self.alone = 0
            if ts_ms > self.latest[self.leader]:
                self.leader = producer
        self.latest[producer] = max(ts_ms, self.latest.get(producer, ts_ms))
        candidate = max(self.latest.values())
        silent = self.alone > SILENT_AFTER  # the others went dark: the leader is followed
        if len(self.latest) > 1 and not silent:
            ranked = sorted(self.latest.values())
            candidate = min(ranked[-1], ranked[-2] + self.lead_ms)
        self.time_ms = candidate if self.time_ms is None else max(self.time_ms, candidate)
        return self.time_ms
