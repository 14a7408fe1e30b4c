"""How busy each camera's road is at a given city time: daily curves and per-camera volumes.

Levels are relative to a weekday peak (1.0). Weekdays have a morning peak (7–8:30) and a
late-afternoon peak (16:30–18:30) and are quiet at night; weekends are flatter. Beach roads
(Thùy Vân, Hạ Long, ...) add visitors, who come midday and afternoon on weekends and triple
on holidays (BRIEF: about 36,000 visitors on a 30/4 holiday). The numbers are calibrated so
that the Vũng Tàu profile produces about 300 events per city second at a weekday peak.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from city.profile import Camera, CameraKind

DayType = Literal["weekday", "weekend", "holiday"]
Curve = tuple[tuple[float, float], ...]  # (hour of day, level), hours ascending, 0 to 24

WEEKDAY: Curve = (
    (0, 0.08), (3, 0.03), (5, 0.12), (6, 0.45), (7, 0.95), (7.75, 1.0), (8.5, 0.85),
    (9.5, 0.55), (11, 0.55), (12, 0.5), (13, 0.45), (14.5, 0.5), (15.5, 0.65), (16.5, 0.92),
    (17.5, 1.0), (18.5, 0.85), (19.5, 0.6), (21, 0.45), (22.5, 0.25), (24, 0.08),
)  # fmt: skip
WEEKEND: Curve = (
    (0, 0.12), (3, 0.04), (6, 0.25), (8, 0.5), (10, 0.62), (12, 0.6), (14, 0.58), (16, 0.72),
    (17.5, 0.82), (19, 0.78), (21, 0.6), (23, 0.3), (24, 0.12),
)  # fmt: skip
# Visitors on the beach roads: a dawn swim, then midday and a late-afternoon crowd.
VISITORS: Curve = (
    (0, 0.05), (4, 0.02), (5, 0.4), (6.5, 0.5), (8, 0.35), (10, 0.6), (12, 0.75), (14, 0.8),
    (16, 1.0), (18, 1.0), (19.5, 0.8), (21, 0.6), (23, 0.2), (24, 0.05),
)  # fmt: skip
VISITOR_FACTOR: dict[DayType, float] = {"weekday": 0.35, "weekend": 1.0, "holiday": 3.0}
# Visitors' cars and coaches also arrive over the arterials on a holiday.
HOLIDAY_ARTERIAL_BOOST = 1.2

# Passages per second of a 4-lane road at the weekday peak.
ARTERIAL_PEAK_PER_S = 2.3
SIDE_STREET_PEAK_PER_S = 0.6
# Traffic-counting cameras sit on the busiest links; Long Sơn is a quiet island commune.
KIND_FACTOR: dict[CameraKind, float] = {
    "high_ptz": 1.0, "low_ptz": 1.0, "security": 1.0, "urban_management": 1.0,
    "traffic_counting": 1.3,
}  # fmt: skip
WARD_FACTOR: dict[str, float] = {"long-son": 0.35}
# Flow saturates as demand exceeds capacity; the excess shows up as lower speeds instead.
CAPACITY_LEVEL = 2.2
NIGHT_HOURS = (22.0, 6.0)


@dataclass(frozen=True)
class CameraDemand:
    camera: Camera
    peak_per_s: float  # passages per second at level 1.0
    phase_ms: int  # this camera's heartbeat offset within each minute


def camera_demand(camera: Camera) -> CameraDemand:
    """The camera's volume: road class, lanes, kind and ward, times a fixed per-camera spread
    (from its id, not the run's seed, so a camera is equally busy in every run)."""
    digest = zlib.crc32(camera.camera_id.encode())
    spread = 0.75 + 0.5 * (digest % 10_000) / 10_000
    base = ARTERIAL_PEAK_PER_S if camera.arterial else SIDE_STREET_PEAK_PER_S
    peak = (
        base
        * (camera.lanes / 4) ** 0.6
        * KIND_FACTOR[camera.kind]
        * WARD_FACTOR.get(camera.ward, 1.0)
        * spread
    )
    return CameraDemand(camera=camera, peak_per_s=peak, phase_ms=(digest >> 8) % 60_000)


def level_at(curve: Curve, hour: float) -> float:
    """Linear interpolation of a daily curve at a fractional hour of day."""
    i = min(max(bisect_right(curve, (hour, math.inf)), 1), len(curve) - 1)
    (h0, v0), (h1, v1) = curve[i - 1], curve[i]
    return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)


@dataclass(frozen=True)
class Moment:
    """What every camera shares at one city time: the hour, the kind of day, the levels."""

    hour: float
    day: DayType
    city_level: float  # the weekday or weekend curve
    visitor_level: float  # beach visitors, already times the day's visitor factor

    @classmethod
    def at(cls, local: datetime, holiday: bool) -> Moment:
        hour = local.hour + local.minute / 60 + local.second / 3600
        day: DayType = "holiday" if holiday else "weekend" if local.weekday() >= 5 else "weekday"
        curve = WEEKDAY if day == "weekday" else WEEKEND
        visitors = VISITOR_FACTOR[day] * level_at(VISITORS, hour)
        return cls(hour, day, level_at(curve, hour), visitors)

    @property
    def night(self) -> bool:
        late, early = NIGHT_HOURS
        return self.hour >= late or self.hour < early

    @property
    def leisure(self) -> bool:
        return self.day != "weekday"

    @property
    def inbound_share(self) -> float:
        """Towards the center in the morning peak, away from it in the afternoon."""
        if 6.5 <= self.hour < 9.0:
            return 0.62
        if 16.0 <= self.hour < 19.0:
            return 0.38
        return 0.5


def demand_level(demand: CameraDemand, moment: Moment) -> float:
    """Demand relative to the camera's weekday peak; may exceed capacity (see flow_level)."""
    camera = demand.camera
    level = moment.city_level
    if moment.day == "holiday" and camera.arterial:
        level *= HOLIDAY_ARTERIAL_BOOST
    if camera.beach_road:
        level += moment.visitor_level
    return level


def flow_level(demand: float) -> float:
    """Vehicles that actually pass: demand, saturating smoothly at the road's capacity."""
    return CAPACITY_LEVEL * math.tanh(demand / CAPACITY_LEVEL)


def speed_factor(demand: float) -> float:
    """Free-flow speed multiplier: 1 in light traffic, about 0.8 at a peak, lower in jams."""
    return 1.0 / (1.0 + 0.5 * max(0.0, demand - 0.6))
