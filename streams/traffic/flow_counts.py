"""What a traffic flow window holds: one camera-minute, as the flow table and the anomaly
rules (streams/traffic/anomaly/watch.py) read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.camera import VEHICLE_CLASSES


@dataclass
class FlowCounts:
    """One camera-minute: counts by class, speeds that were reported, violations, and the
    ward the camera stood in when they were counted (a profile may move or retire it while
    the window is open)."""

    ward: str
    by_class: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VEHICLE_CLASSES, 0))
    speed_sum: float = 0.0
    speed_count: int = 0
    violations: int = 0

    def to_state(self) -> dict[str, Any]:
        """The counts as a window's saved entry keeps them (`FlowCounts(**state)` reads them
        back): what `dataclasses.asdict` gives, written out, as a checkpoint makes one for
        every window a second changed; asdict copies recursively at ~15 µs a window (issue 20)."""
        return {
            "ward": self.ward,
            "by_class": dict(self.by_class),
            "speed_sum": self.speed_sum,
            "speed_count": self.speed_count,
            "violations": self.violations,
        }
