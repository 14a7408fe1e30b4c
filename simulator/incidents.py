"""Ground-truth incidents injected into camera traffic, so anomaly detection can be measured.

An incident changes one camera's events within [start, end): it goes dark, stops seeing
vehicles, freezes its classifier, or sees slower, fewer, more or more offending vehicles. Each
kind is an Effect that simulator/traffic.py applies while generating the camera's events.
Parsing lives here too, so the CLI and the anomaly benchmark build incidents the same way:
`KIND:CAMERA:START:DURATION[:SIZE]`, START being RFC 3339 (`2024-09-14T07:30:00+07:00`) or an
offset from the run's start (`+90m`), DURATION with a unit (`90s`, `20m`, `2h`), SIZE a bare
number. START's own colons are why the text is read from both ends.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import pairwise

from schemas.camera import CameraStatus, VehicleClass
from simulator.exceptions import SimulatorError
from streams.traffic.anomaly.kinds import CAMERA_KINDS, CameraKind

# What the simulator can inject: every kind one camera can show (the alert kinds' module).
IncidentKind = CameraKind
INCIDENT_KINDS = CAMERA_KINDS
DEFAULT_SIZE: dict[IncidentKind, float] = {
    "camera_offline": 1.0,
    "camera_silent": 1.0,
    "camera_stuck": 1.0,
    "congestion": 0.5,  # speeds × 0.5
    "flow_drop": 0.3,  # passages × 0.3
    "flow_surge": 2.5,  # passages × 2.5
    "violation_spike": 5.0,  # violations per passage × 5
}
# What a frozen classifier keeps reporting.
STUCK_CLASS: VehicleClass = "car"
STUCK_SPEED_KMH = 42.0

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smh])")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Effect:
    """How an incident changes a camera's events; the identity changes nothing."""

    heartbeats: bool = True
    status: CameraStatus | None = None  # reported by every heartbeat instead of a drawn one
    passages: bool = True
    flow: float = 1.0  # passage rate factor
    speed: float = 1.0  # speed factor
    violations: float = 1.0  # violations-per-passage factor
    frozen: bool = False  # every passage reported as STUCK_CLASS at STUCK_SPEED_KMH


@dataclass(frozen=True)
class Incident:
    kind: IncidentKind
    camera_id: str
    start_ms: int
    end_ms: int
    size: float

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise SimulatorError(f"incident kind: unknown {self.kind!r}, expected one of "
                                 + ", ".join(INCIDENT_KINDS))  # fmt: skip
        if self.end_ms <= self.start_ms:
            raise SimulatorError(f"incident {self.kind}:{self.camera_id}: duration must be > 0")
        if not self.size > 0:
            raise SimulatorError(f"incident {self.kind}:{self.camera_id}: size must be > 0")

    @property
    def effect(self) -> Effect:
        match self.kind:
            case "camera_offline":
                return Effect(heartbeats=False, passages=False)
            case "camera_silent":
                return Effect(status="online", passages=False)
            case "camera_stuck":
                return Effect(frozen=True)
            case "congestion":
                return Effect(speed=self.size)
            case "flow_drop" | "flow_surge":
                return Effect(flow=self.size)
            case "violation_spike":
                return Effect(violations=self.size)

    def truth(self, tz: tzinfo) -> dict[str, object]:
        """The ground-truth record the simulator writes, one JSON line per incident."""
        return {
            "kind": self.kind,
            "camera_id": self.camera_id,
            "start": datetime.fromtimestamp(self.start_ms / 1000, tz).isoformat(),
            "start_ms": self.start_ms,
            "end": datetime.fromtimestamp(self.end_ms / 1000, tz).isoformat(),
            "end_ms": self.end_ms,
            "size": self.size,
        }


def parse_incident(text: str, run_start_ms: int, camera_ids: Collection[str]) -> Incident:
    """`KIND:CAMERA:START:DURATION[:SIZE]`; a one-line SimulatorError naming the bad part."""
    where = f"--incident {text!r}"
    parts = text.split(":")
    if len(parts) < 4:
        raise SimulatorError(f"{where}: expected KIND:CAMERA:START:DURATION[:SIZE]")
    kind, camera_id, *middle = parts
    if kind not in INCIDENT_KINDS:
        raise SimulatorError(f"{where}: unknown kind {kind!r}, expected one of "
                             + ", ".join(INCIDENT_KINDS))  # fmt: skip
    if camera_id not in camera_ids:
        raise SimulatorError(f"{where}: unknown camera {camera_id!r}")
    size = DEFAULT_SIZE[kind]
    # DURATION always has a unit and SIZE never does, so a bare number at the end is SIZE.
    if _NUMBER.fullmatch(middle[-1]) and len(middle) >= 3:
        size = float(middle.pop())
    duration_ms = _duration_ms(middle.pop(), where)
    start_ms = _start_ms(":".join(middle), run_start_ms, where)
    if not size > 0:
        raise SimulatorError(f"{where}: SIZE must be > 0")
    return Incident(kind, camera_id, start_ms, start_ms + duration_ms, size)


def _span_ms(text: str) -> int | None:
    """Milliseconds of `90s`, `20m`, `1.5h`; None without a unit."""
    match = _DURATION.fullmatch(text)
    return None if match is None else round(float(match[1]) * _UNIT_MS[match[2]])


def _duration_ms(text: str, where: str) -> int:
    duration_ms = _span_ms(text)
    if duration_ms is None:
        raise SimulatorError(f"{where}: DURATION {text!r} needs a unit, e.g. 90s, 20m or 2h")
    if duration_ms <= 0:
        raise SimulatorError(f"{where}: DURATION must be > 0")
    return duration_ms


def _start_ms(text: str, run_start_ms: int, where: str) -> int:
    if text.startswith("+"):
        offset_ms = _span_ms(text[1:])
        if offset_ms is None:
            raise SimulatorError(f"{where}: START {text!r} as an offset needs a unit, e.g. +90m")
        return run_start_ms + offset_ms
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SimulatorError(
            f"{where}: START {text!r} is neither RFC 3339 nor an offset like +90m"
        ) from None
    if parsed.tzinfo is None:
        raise SimulatorError(f"{where}: START {text!r} needs an offset such as +07:00 or Z")
    return round(parsed.timestamp() * 1000)


def check_no_overlap(incidents: Sequence[Incident]) -> None:
    """One incident per camera at a time: the ground truth of two at once is ambiguous."""
    by_camera: dict[str, list[Incident]] = {}
    for incident in incidents:
        by_camera.setdefault(incident.camera_id, []).append(incident)
    for camera_id, own in by_camera.items():
        own.sort(key=lambda i: i.start_ms)
        for first, second in pairwise(own):
            if second.start_ms < first.end_ms:
                raise SimulatorError(
                    f"--incident: {first.kind} and {second.kind} overlap on camera {camera_id}"
                )
