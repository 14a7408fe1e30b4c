"""What this process counted, per partition, for /metrics.

A stage's counters are cumulative since the partition's first event and travel in its state,
which is right for `pipeline_progress` but not for Prometheus: a counter must only grow within
a process, or a scrape reads a drop as a restart and a rate as nonsense (after an offsets
reset a partition's state starts again lower, after a rebalance it comes back from another
worker). So /metrics reports what this process counted: each counter's value now, minus its
value when the partition was assigned, plus what earlier assignments of the partition to this
process counted. Nothing here runs per event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping


class ProcessTally:
    def __init__(self) -> None:
        self._at_assign: dict[int, dict[str, int]] = {}
        self._before: dict[int, Counter[str]] = {}

    def assigned(self, partition: int, counters: Mapping[str, int]) -> None:
        """The partition's counters as its state was loaded."""
        self._at_assign[partition] = dict(counters)

    def revoked(self, partition: int, counters: Mapping[str, int]) -> None:
        """Keep what this assignment counted; `counters` as the partition is given up."""
        self._before.setdefault(partition, Counter()).update(self.counted(partition, counters))
        self._at_assign.pop(partition, None)

    def counted(self, partition: int, counters: Mapping[str, int]) -> dict[str, int]:
        """What this process counted on the partition, by counter, given its counters now."""
        at_assign = self._at_assign.get(partition, {})
        before = self._before.get(partition, Counter())
        return {key: before[key] + value - at_assign.get(key, 0) for key, value in counters.items()}
