"""What the anomaly watch remembers per camera and per partition, and how it is read back.

It lives in the traffic stream's keyed partition state (streams/engine/windows.py) and is
checkpointed with the windows; a restore hands back plain JSON, turned into these again on
first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.traffic.anomaly.alerts import Incident, incidents_from_state


@dataclass
class Minute:
    """One camera-minute as the detector judged it."""

    start_ms: int
    vehicles: int
    speed_sum: float
    speed_n: int
    violations: int
    classes: list[int]
    expected: float  # the baseline's vehicles, 0 without one
    # False when the camera was dark (no vehicles and no heartbeat), offline or silent: the
    # minute is then no evidence of its traffic, and the flow rules pass over it.
    healthy: bool = True

    @property
    def speed(self) -> float | None:
        return self.speed_sum / self.speed_n if self.speed_n else None


@dataclass
class CameraWatch:
    camera_id: str
    alive_ms: int
    status: str = "online"
    heartbeats: list[int] = field(default_factory=list)  # the last few online/degraded ones
    minutes: list[Minute] = field(default_factory=list)
    zero_minutes: int = 0
    zero_expected: float = 0.0
    streaks: dict[str, int] = field(default_factory=dict)
    congested: list[int] = field(default_factory=list)  # 1/0 per recent minute with speeds
    incidents: dict[str, Incident] = field(default_factory=dict)


@dataclass
class PartitionWatch:
    next_tick_ms: int
    cameras: list[str] = field(default_factory=list)
    city_streak: int = 0
    incidents: dict[str, Incident] = field(default_factory=dict)


def camera_from_state(state: dict[str, Any]) -> CameraWatch:
    return CameraWatch(
        **{
            **state,
            "minutes": [Minute(**m) for m in state["minutes"]],
            "incidents": incidents_from_state(state["incidents"]),
        }
    )


def partition_from_state(state: dict[str, Any]) -> PartitionWatch:
    return PartitionWatch(**{**state, "incidents": incidents_from_state(state["incidents"])})
