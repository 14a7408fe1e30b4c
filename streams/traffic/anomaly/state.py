"""What the anomaly watch remembers per camera and per partition, and how it is read back.

`WatchState` is all of it for one input partition, owned by the watch: the traffic stream
keeps it as one opaque entry of the partition's checkpointed state (streams/traffic/flow.py),
and a restore hands back its plain JSON, read here (`watch_from_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.camera import VEHICLE_CLASSES
from streams.traffic.anomaly.alerts import Incident, incidents_from_state

# What a minute's `expected` rests on: what the camera has shown (its learned slot, or a
# level it is sure of over the prior's shape), a level it is not yet sure of
# (camera_level.py), or the prior alone, which no rule judges traffic by.
Basis = Literal["learned", "own", "prior"]


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
    # A checkpoint from before cold start judged every minute as learned.
    basis: Basis = "learned"

    @property
    def speed(self) -> float | None:
        return self.speed_sum / self.speed_n if self.speed_n else None


@dataclass
class HourTally:
    """What a camera showed over the healthy minutes of one hour, against its prior."""

    start_ms: int
    minutes: int = 0
    vehicles: int = 0
    expected: float = 0.0  # the prior's vehicles over the same minutes
    speed_sum: float = 0.0
    speed_n: int = 0
    violations: int = 0
    classes: list[int] = field(default_factory=lambda: [0] * len(VEHICLE_CLASSES))


@dataclass
class CameraWatch:
    camera_id: str
    alive_ms: int
    status: str = "online"
    heartbeats: list[int] = field(default_factory=list)  # the last few alive ones
    minutes: list[Minute] = field(default_factory=list)
    zero_minutes: int = 0
    zero_expected: float = 0.0
    streaks: dict[str, int] = field(default_factory=dict)
    congested: list[int] = field(default_factory=list)  # 1/0 per recent minute with speeds
    incidents: dict[str, Incident] = field(default_factory=dict)
    hours: list[HourTally] = field(default_factory=list)  # the camera's own recent hours
    # Its first minutes' mean speed over the prior's (camera_level.py), for congestion.
    speed_ratios: list[float] = field(default_factory=list)


@dataclass
class PartitionWatch:
    next_tick_ms: int
    city_streak: int = 0
    incidents: dict[str, Incident] = field(default_factory=dict)


@dataclass
class WatchState:
    """Everything the watch of one input partition remembers: its ticks and partition-wide
    alerts, and its cameras in the order it first heard them (the order they are judged in)."""

    partition: PartitionWatch
    cameras: dict[str, CameraWatch] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Its smallest camera id: the partitions' camera sets are apart, and it names a
        partition the same in a replay, whichever worker holds it."""
        return min(self.cameras, default="")


def camera_from_state(state: dict[str, Any]) -> CameraWatch:
    return CameraWatch(
        **{
            **state,
            "minutes": [Minute(**m) for m in state["minutes"]],
            "incidents": incidents_from_state(state["incidents"]),
            "hours": [HourTally(**h) for h in state.get("hours", [])],
        }
    )


def partition_from_state(state: dict[str, Any]) -> PartitionWatch:
    return PartitionWatch(**{**state, "incidents": incidents_from_state(state["incidents"])})


def watch_from_state(state: dict[str, Any]) -> WatchState:
    cameras = state["cameras"]
    return WatchState(
        partition_from_state(state["partition"]),
        {camera_id: camera_from_state(camera) for camera_id, camera in cameras.items()},
    )


# Where a checkpoint from before `WatchState` kept the watch: the partition's entry under
# `WATCH_KEY` with the list of its cameras, each camera's under this prefix.
LEGACY_CAMERA_PREFIX = "watch:"


def legacy_watch(partition: dict[str, Any], saved: Mapping[str, Any]) -> WatchState:
    """The watch as such a checkpoint saved it, `saved` being the partition's other entries.
    A camera listed without an entry of its own had not changed since it was first heard (that
    layout saved it on its next change): it is heard anew."""
    kept = {key: value for key, value in partition.items() if key != "cameras"}
    entries = [(c, saved.get(LEGACY_CAMERA_PREFIX + c)) for c in partition["cameras"]]
    return WatchState(
        partition_from_state(kept),
        {c: camera_from_state(entry) for c, entry in entries if entry is not None},
    )
