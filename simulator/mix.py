"""What passes a camera: the vehicle mix, speeds, plate reads, violations and camera health.

Weighted draws are cumulative tables picked with one uniform number, so that generation stays
cheap at tens of thousands of events per second and every draw comes from the run's seed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Generic, TypeVar

from city.profile import Camera, CameraKind
from schemas.camera import CameraStatus, VehicleClass, ViolationType

T = TypeVar("T")

# About 85% motorbikes, as in Vietnamese urban traffic; few buses, trucks and bicycles.
CLASS_WEIGHTS: dict[VehicleClass, float] = {
    "motorbike": 85.0, "car": 10.6, "bus": 1.1, "truck": 1.4, "bicycle": 1.3, "other": 0.6,
}  # fmt: skip
# Trucks are kept out of the center by day; visitors come by car and coach at leisure times.
NIGHT_FACTORS: dict[VehicleClass, float] = {"truck": 3.0}
LEISURE_FACTORS: dict[VehicleClass, float] = {"car": 1.6, "bus": 2.0}

# Free-flow speeds in km/h: (arterial, side street) ranges.
SPEEDS: dict[VehicleClass, tuple[tuple[float, float], tuple[float, float]]] = {
    "motorbike": ((30, 45), (25, 38)),
    "car": ((35, 60), (25, 45)),
    "bus": ((25, 45), (20, 35)),
    "truck": ((25, 50), (20, 35)),
    "bicycle": ((10, 20), (8, 18)),
    "other": ((10, 30), (10, 25)),
}
# Urban limits: 60 km/h on divided arterials, 50 elsewhere.
SPEED_LIMITS = (60.0, 50.0)

# Share of passages whose plate the camera reads, by camera kind and by vehicle class.
PLATE_READS: dict[CameraKind, float] = {
    "high_ptz": 0.35, "low_ptz": 0.7, "security": 0.55, "urban_management": 0.45,
    "traffic_counting": 0.25,
}  # fmt: skip
PLATE_READS_BY_CLASS: dict[VehicleClass, float] = {
    "motorbike": 0.6, "car": 1.0, "bus": 1.0, "truck": 1.0, "bicycle": 0.0, "other": 0.5,
}  # fmt: skip
VIOLATION_PLATE_READS = 0.95

# Violations per passage: about 1.5% overall, more at signalled arterial junctions.
VIOLATION_SHARE = (0.016, 0.012)  # (arterial, side street)
VIOLATION_WEIGHTS: dict[ViolationType, float] = {
    "no_helmet": 28, "red_light": 24, "wrong_lane": 22, "wrong_way": 7, "crosswalk_stop": 6,
    "speeding": 2, "illegal_parking": 3,
}  # fmt: skip
ARTERIAL_SPEEDING_WEIGHT = 12.0
CENTER_PARKING_WEIGHT = 14.0
# The old city center, where kerb space is scarce (Phường 1–5).
CENTER_WARDS = frozenset({"phuong-1", "phuong-2", "phuong-3", "phuong-4", "phuong-5"})
# Offences a class can commit: helmets are for motorbikes; bicycles are neither plated nor
# speed-checked.
NOT_FOR_CLASS: dict[VehicleClass, frozenset[ViolationType]] = {
    "motorbike": frozenset(),
    "bicycle": frozenset({"no_helmet", "speeding", "illegal_parking"}),
}
NOT_FOR_VEHICLES: frozenset[ViolationType] = frozenset({"no_helmet"})

STATUS_WEIGHTS: dict[CameraStatus, float] = {
    "online": 0.985, "degraded": 0.01, "offline": 0.004, "tampered": 0.001,
}  # fmt: skip


class Table(Generic[T]):
    """A weighted draw: `pick(u)` with u uniform in [0, 1)."""

    def __init__(self, weights: Mapping[T, float]) -> None:
        kept = [(value, weight) for value, weight in weights.items() if weight > 0]
        self._values = [value for value, _ in kept]
        self._cumulative = list(accumulate(weight for _, weight in kept))
        self._total = self._cumulative[-1]

    def pick(self, u: float) -> T:
        return self._values[bisect_right(self._cumulative, u * self._total)]

    def shares(self) -> dict[T, float]:
        """Each value's probability of being picked (for expectations, e.g. baseline priors)."""
        previous = [0.0, *self._cumulative[:-1]]
        return {
            value: (upto - before) / self._total
            for value, upto, before in zip(self._values, self._cumulative, previous, strict=True)
        }


@cache
def class_table(night: bool, leisure: bool) -> Table[VehicleClass]:
    weights = dict(CLASS_WEIGHTS)
    for factors, applies in ((NIGHT_FACTORS, night), (LEISURE_FACTORS, leisure)):
        if applies:
            for vehicle_class, factor in factors.items():
                weights[vehicle_class] *= factor
    return Table(weights)


STATUS_TABLE: Table[CameraStatus] = Table(STATUS_WEIGHTS)


@dataclass(frozen=True)
class CameraMix:
    """A camera's fixed traits: what it measures and which offences it sees how often."""

    speed_limit: float
    violation_share: float
    reports_lane: bool  # high PTZ cameras watch a whole square, not lanes
    reports_speed: bool  # urban-management cameras are not speed-calibrated
    speeds: dict[VehicleClass, tuple[float, float]]
    plate_reads: dict[VehicleClass, float]
    violations: dict[VehicleClass, Table[ViolationType]]


def camera_mix(camera: Camera) -> CameraMix:
    road = 0 if camera.arterial else 1
    weights = dict(VIOLATION_WEIGHTS)
    reports_speed = camera.kind != "urban_management"
    if not reports_speed:
        weights["speeding"] = 0.0
    elif camera.arterial:
        weights["speeding"] = ARTERIAL_SPEEDING_WEIGHT
    if camera.ward in CENTER_WARDS:
        weights["illegal_parking"] = CENTER_PARKING_WEIGHT
    violations: dict[VehicleClass, Table[ViolationType]] = {}
    for vehicle_class in CLASS_WEIGHTS:
        excluded = NOT_FOR_CLASS.get(vehicle_class, NOT_FOR_VEHICLES)
        violations[vehicle_class] = Table({v: w for v, w in weights.items() if v not in excluded})
    return CameraMix(
        speed_limit=SPEED_LIMITS[road],
        violation_share=VIOLATION_SHARE[road],
        reports_lane=camera.kind != "high_ptz",
        reports_speed=reports_speed,
        speeds={vehicle_class: ranges[road] for vehicle_class, ranges in SPEEDS.items()},
        plate_reads={c: PLATE_READS[camera.kind] * f for c, f in PLATE_READS_BY_CLASS.items()},
        violations=violations,
    )
