"""A histogram of durations, kept by whoever times something and read by /metrics.

Cumulative bucket counts as Prometheus reads them; one `observe` per checkpoint, never per
event, so the engine keeps no metrics library of its own.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Seconds: a checkpoint of an idle pipeline takes milliseconds, one behind a slow store seconds.
CHECKPOINT_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)


@dataclass
class Durations:
    bounds: tuple[float, ...] = CHECKPOINT_BOUNDS
    # counts[i]: observations in (bounds[i-1], bounds[i]]; the last one is above every bound.
    counts: list[int] = field(default_factory=lambda: [0] * (len(CHECKPOINT_BOUNDS) + 1))
    total_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total_s += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        """(upper bound, observations at or under it), ending with "+Inf" and the count."""
        running, buckets = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets
