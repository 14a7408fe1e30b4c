"""What a camera's traffic usually looks like, per kind of day and quarter hour.

The anomaly rules (watch.py) compare each minute with the baseline of its camera,
kind of day (city/calendar.py) and 15-minute slot of the local day: robust medians and MADs of
vehicles per minute and of the minute's mean speed, violations per vehicle, and the share of
each vehicle class. Rows live in `traffic_baseline_versions`; `vtops baselines refresh` learns
them from `traffic_flow_1m` (minutes inside ended alerts left out), falls back to the
simulator's priors where history is thin, and writes them as a new `version` effective from a
stated event time. A minute is judged by the version effective at its own time
(`BaselineTimeline`, timeline.py), so a replay of the same history uses the same versions as
the live run did, whenever the worker read them; the worker re-reads the versions on a schedule
(VTOPS_BASELINES_REFRESH_MINUTES) without a restart.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from city.calendar import DAY_TYPES, DayType, day_type
from city.clock import local_time
from schemas.camera import VEHICLE_CLASSES

BASELINES_TABLE = "traffic_baseline_versions"
SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
# A MAD of 0 (a camera that always counts the same) would make every change infinitely
# anomalous; counts are at least Poisson-noisy, speeds at least this noisy.
MIN_SPEED_MAD_KMH = 1.0

SlotKey = tuple[str, DayType, int]
# The `source` of a row that is the simulator's prior rather than the camera's history.
PRIOR_SOURCE = "prior"
# The effective time of a version that judges every minute (until a later version's).
ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)
# A row's kind of day, as the one string of its value the module holds.
_DAY_TYPE_OF: dict[str, DayType] = {day: day for day in DAY_TYPES}


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


class BaselineSource(Protocol):
    """What the anomaly rules ask of baselines: a camera's slot, and which version said it."""

    def at(self, camera_id: str, ts_ms: int, tz: tzinfo) -> SlotBaseline | None: ...

    def version_at(self, ts_ms: int) -> int: ...


@dataclass(frozen=True)
class Baselines:
    """Every camera's baseline of one version, at every time; `version` names the refresh they
    came from (0: none)."""

    slots: Mapping[SlotKey, SlotBaseline]
    version: int

    def at(self, camera_id: str, ts_ms: int, tz: tzinfo) -> SlotBaseline | None:
        """The baseline of the camera's slot holding `ts_ms` in the city's zone `tz`."""
        kind, slot = slot_of(local_time(ts_ms, tz))
        return self.slots.get((camera_id, kind, slot))

    def version_at(self, ts_ms: int) -> int:
        return self.version


@dataclass(frozen=True, slots=True, order=True)
class BaselineVersion:
    """A refresh: its rows judge the minutes from `effective_from_ms` (event time) until the
    next version's. Ordered by effective time, then version (the later refresh of two stated
    for the same time wins)."""

    effective_from_ms: int
    version: int


COLUMNS = (
    "camera_id", "day_type", "slot", "vehicles_median", "vehicles_mad", "speed_median",
    "speed_mad", "violation_rate", *(f"{c}_share" for c in VEHICLE_CLASSES), "samples",
    "source", "version", "effective_from",
)  # fmt: skip


NO_BASELINES = Baselines({}, 0)


# Where a row of `COLUMNS` holds its class shares, its source and its version; the columns
# before the shares are the slot's key and its figures.
_FIRST_SHARE = COLUMNS.index(f"{VEHICLE_CLASSES[0]}_share")
_SHARES = slice(_FIRST_SHARE, _FIRST_SHARE + len(VEHICLE_CLASSES))
_SOURCE, _VERSION = COLUMNS.index("source"), COLUMNS.index("version")


def baselines_from_rows(rows: Iterable[Sequence[Any]]) -> Baselines:
    """A version's slots from its rows, each a tuple in the order of `COLUMNS`.

    A version is ~56,000 slots and a worker holds up to three: each row's camera id and kind
    of day arrive as strings of their own and are made one per value, and equal class shares
    one mapping (the priors have four), which more than halves a version's memory (26 → 11 MB,
    issue 20). Tuples, not the driver's named rows: 56,000 dicts fewer to make at start.
    """
    slots: dict[SlotKey, SlotBaseline] = {}
    shares: dict[tuple[float, ...], Mapping[str, float]] = {}
    version = 0
    for row in rows:
        key_and_figures = row[:_FIRST_SHARE]
        camera_id, day, slot, vehicles, vehicles_mad, speed, speed_mad, rate = key_and_figures
        share_values = tuple(row[_SHARES])
        class_share = shares.get(share_values)
        if class_share is None:
            class_share = dict(zip(VEHICLE_CLASSES, share_values, strict=True))
            shares[share_values] = class_share
        slots[(sys.intern(camera_id), _DAY_TYPE_OF[day], slot)] = SlotBaseline(
            vehicles=vehicles,
            vehicles_mad=vehicles_mad,
            speed_kmh=speed,
            speed_mad=speed_mad,
            violation_rate=rate,
            class_share=class_share,
            learned=row[_SOURCE] != PRIOR_SOURCE,
        )
        version = max(version, row[_VERSION])
    return Baselines(slots, version)


def read_versions(client: Client, database: str) -> list[BaselineVersion]:
    """Every version in the store, with the event time it is effective from."""
    result = client.query(
        f"SELECT toUnixTimestamp64Milli(min(effective_from)), version "
        f"FROM {database}.{BASELINES_TABLE} GROUP BY version"
    )
    return [BaselineVersion(int(start), int(version)) for start, version in result.result_rows]


def read_version(client: Client, database: str, version: int) -> Baselines:
    """One version's slots."""
    result = client.query(
        f"SELECT {', '.join(COLUMNS)} FROM {database}.{BASELINES_TABLE} FINAL "
        "WHERE version = {version:UInt64}",
        parameters={"version": version},
    )
    return baselines_from_rows(result.result_rows)
