"""What a traffic flow window holds: one camera-minute, as the flow table and the anomaly
rules (streams/traffic/anomaly/watch.py) read it."""

from __future__ import annotations

from dataclasses import dataclass, field

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
