"""What a camera's traffic usually looks like, per kind of day and quarter hour.

The anomaly rules (watch.py) compare each minute with the baseline of its camera,
kind of day (city/calendar.py) and 15-minute slot of the local day: robust medians and MADs of
vehicles per minute and of the minute's mean speed, violations per vehicle, and the share of
each vehicle class. Rows live in `traffic_baselines`; `vtops baselines refresh` learns them
from `traffic_flow_1m` (minutes inside alerts left out) and falls back to the simulator's
priors where history is thin. The worker loads them once at start, so a replay with the same
baseline `version` reproduces the same alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from clickhouse_connect.driver.client import Client

from city.calendar import DayType, day_type
from city.clock import local_time
from schemas.camera import VEHICLE_CLASSES

BASELINES_TABLE = "traffic_baselines"
SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
# A MAD of 0 (a camera that always counts the same) would make every change infinitely
# anomalous; counts are at least Poisson-noisy, speeds at least this noisy.
MIN_SPEED_MAD_KMH = 1.0

SlotKey = tuple[str, DayType, int]
# The `source` of a row that is the simulator's prior rather than the camera's history.
PRIOR_SOURCE = "prior"


@dataclass(frozen=True, slots=True)
class SlotBaseline:
    vehicles: float  # median vehicles per minute
    vehicles_mad: float
    speed_kmh: float | None  # median of the minute mean speeds; None: the camera reports none
    speed_mad: float
    violation_rate: float  # violations per vehicle
    class_share: Mapping[str, float]  # share of passages per vehicle class
    # True when learned from the camera's own history; False for the simulator's prior, which
    # tells the city's shape over a day but not this camera's level (camera_level.py).
    learned: bool = False

    def speed_scale(self) -> float:
        """The robust standard deviation of the minute mean speed."""
        return max(1.4826 * self.speed_mad, MIN_SPEED_MAD_KMH)


def slot_of(moment: datetime) -> tuple[DayType, int]:
    return day_type(moment.date()), (moment.hour * 60 + moment.minute) // SLOT_MINUTES


@dataclass(frozen=True)
class Baselines:
    """Every camera's baseline; `version` names the refresh they came from (0: none)."""

    slots: Mapping[SlotKey, SlotBaseline]
    version: int

    def at(self, camera_id: str, ts_ms: int, tz: tzinfo) -> SlotBaseline | None:
        """The baseline of the camera's slot holding `ts_ms` in the city's zone `tz`."""
        kind, slot = slot_of(local_time(ts_ms, tz))
        return self.slots.get((camera_id, kind, slot))


COLUMNS = (
    "camera_id", "day_type", "slot", "vehicles_median", "vehicles_mad", "speed_median",
    "speed_mad", "violation_rate", *(f"{c}_share" for c in VEHICLE_CLASSES), "samples",
    "source", "version",
)  # fmt: skip


NO_BASELINES = Baselines({}, 0)


def baseline_of(row: Mapping[str, Any]) -> SlotBaseline:
    return SlotBaseline(
        vehicles=row["vehicles_median"],
        vehicles_mad=row["vehicles_mad"],
        speed_kmh=row["speed_median"],
        speed_mad=row["speed_mad"],
        violation_rate=row["violation_rate"],
        class_share={c: row[f"{c}_share"] for c in VEHICLE_CLASSES},
        learned=row["source"] != PRIOR_SOURCE,
    )


def baselines_from_rows(rows: Iterable[Mapping[str, Any]]) -> Baselines:
    slots: dict[SlotKey, SlotBaseline] = {}
    version = 0
    for row in rows:
        slots[(row["camera_id"], row["day_type"], row["slot"])] = baseline_of(row)
        version = max(version, row["version"])
    return Baselines(slots, version)


def load_baselines(client: Client, database: str) -> Baselines:
    result = client.query(f"SELECT {', '.join(COLUMNS)} FROM {database}.{BASELINES_TABLE} FINAL")
    return baselines_from_rows(result.named_results())
