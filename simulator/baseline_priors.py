"""Baselines from the simulator's own model: what each camera should see before any history.

A fresh store has no traffic history to learn baselines from
(streams/traffic/anomaly/baselines.py), so the
anomaly rules start from these priors: the expectation of simulator/traffic.py's Poisson
process per camera, kind of day and 15-minute slot. Vehicles per minute are the mean of the
slot's minutes of flow_level × peak_per_s × 60; their MAD is a Poisson one (0.6745·√λ) widened
by how much the daily curve moves within the slot. Speeds are the class mix's mean free-flow
speed times the slot's slowdown, with the MAD of a minute's mean of about λ vehicles. The kinds
of day are read on a reference date each: a Wednesday, a Saturday and a Sunday that is no
public holiday (the simulator's --holiday triples beach visitors; holidays learn from history).
`vtops baselines refresh` (vtops/baselines.py) falls back to these where history is thin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import numpy as np
from numpy.typing import NDArray

from city.calendar import DAY_TYPES, DayType
from city.profile import CityProfile
from schemas.camera import VEHICLE_CLASSES, VehicleClass
from simulator.demand import (
    CameraDemand,
    Moment,
    camera_demand,
    demand_level,
    flow_level,
    speed_factor,
)
from simulator.mix import CameraMix, Table, camera_mix, class_table
from streams.traffic.anomaly.baselines import (
    ALWAYS,
    COLUMNS,
    PRIOR_SOURCE,
    SLOT_MINUTES,
    SLOTS_PER_DAY,
    SlotBaseline,
    SlotKey,
)

REFERENCE_DAYS: Mapping[DayType, date] = {
    "weekday": date(2024, 9, 18),  # a Wednesday
    "saturday": date(2024, 9, 21),
    "sunday_holiday": date(2024, 9, 22),  # a Sunday, no holiday
}
# MAD of a normal distribution per standard deviation.
MAD_PER_SD = 0.6745


def slot_moments(day: DayType, slot: int, tz: tzinfo) -> list[Moment]:
    """The slot's minutes as the simulator sees them: each at its middle (its rate's step)."""
    reference = REFERENCE_DAYS[day]
    first = slot * SLOT_MINUTES
    day_start = datetime(reference.year, reference.month, reference.day, tzinfo=tz)
    return [
        Moment.at(day_start + timedelta(minutes=minute, seconds=30), holiday=False)
        for minute in range(first, first + SLOT_MINUTES)
    ]


def prior_baselines(profile: CityProfile) -> dict[SlotKey, SlotBaseline]:
    """Every camera × kind of day × slot of the profile.

    A worker on a fresh store waits for these (56,448 slots for Vũng Tàu), so each camera's
    slots are computed at once as arrays of (slot, minute of the slot); the levels, which only
    the kind of road changes, once per kind of road.
    """
    slots = [(day, slot) for day in DAY_TYPES for slot in range(SLOTS_PER_DAY)]
    moments = [slot_moments(day, slot, profile.tz) for day, slot in slots]
    roads: dict[tuple[bool, bool], _RoadCurves] = {}
    priors: dict[SlotKey, SlotBaseline] = {}
    for camera in profile.cameras:
        demand, mix = camera_demand(camera), camera_mix(camera)
        road = roads.get((camera.arterial, camera.beach_road))
        if road is None:
            road = roads[(camera.arterial, camera.beach_road)] = _road_curves(demand, moments)
        baselines = _camera_priors(demand, mix, road)
        for (day, slot), baseline in zip(slots, baselines, strict=True):
            priors[(camera.camera_id, day, slot)] = baseline
    return priors


@dataclass(frozen=True)
class _RoadCurves:
    """What every camera on one kind of road (arterial or not, beach road or not) shares, per
    slot (rows) and minute of the slot (columns)."""

    flows: NDArray[np.float64]  # vehicles passing per vehicle at the weekday peak
    slowdowns: NDArray[np.float64]  # free-flow speed multipliers
    # Slots start and end on the hour or quarter, so night (22–6) and leisure hold throughout.
    tables: list[Table[VehicleClass]]  # the class mix, per slot


def _road_curves(demand: CameraDemand, moments: list[list[Moment]]) -> _RoadCurves:
    # The simulator's scalar functions, so the priors follow the model it draws from.
    levels = [[demand_level(demand, moment) for moment in slot] for slot in moments]
    beach = demand.camera.beach_road
    return _RoadCurves(
        flows=np.array([[flow_level(level) for level in slot] for slot in levels]),
        slowdowns=np.array([[speed_factor(level) for level in slot] for slot in levels]),
        tables=[class_table(slot[0].night, slot[0].leisure and beach) for slot in moments],
    )


def _camera_priors(demand: CameraDemand, mix: CameraMix, road: _RoadCurves) -> list[SlotBaseline]:
    """The expected minute of a camera over each slot."""
    per_minute = road.flows * demand.peak_per_s * 60
    vehicles = per_minute.mean(axis=1)
    vehicles_mad = MAD_PER_SD * np.sqrt(vehicles + per_minute.var(axis=1))
    speeds: list[float | None] = [None] * len(road.tables)
    speed_mads = [0.0] * len(road.tables)
    if mix.reports_speed:
        # Each class drives uniformly within its free-flow range, times the slot's slowdown.
        moments_of = {table: _speed_moments(mix, table.shares()) for table in set(road.tables)}
        mean = np.array([moments_of[table][0] for table in road.tables])[:, np.newaxis]
        spread = np.array([moments_of[table][1] for table in road.tables])[:, np.newaxis]
        minute_means = mean * road.slowdowns
        # A minute's mean over about λ vehicles (at least the one that reported a speed).
        within = ((spread * road.slowdowns) ** 2 / np.maximum(per_minute, 1.0)).mean(axis=1)
        speeds = minute_means.mean(axis=1).tolist()
        speed_mads = (MAD_PER_SD * np.sqrt(within + minute_means.var(axis=1))).tolist()
    # One share mapping per class table, shared by the slots that use it (read only).
    shares: dict[Table[VehicleClass], Mapping[str, float]] = {
        t: {c: t.shares().get(c, 0.0) for c in VEHICLE_CLASSES} for t in set(road.tables)
    }
    return [
        SlotBaseline(
            vehicles=expected,
            vehicles_mad=mad,
            speed_kmh=speed,
            speed_mad=speed_mad,
            violation_rate=mix.violation_share,
            class_share=shares[table],
        )
        for expected, mad, speed, speed_mad, table in zip(
            vehicles.tolist(), vehicles_mad.tolist(), speeds, speed_mads, road.tables, strict=True
        )
    ]


def _speed_moments(mix: CameraMix, shares: Mapping[VehicleClass, float]) -> tuple[float, float]:
    """The mean and standard deviation of a passing vehicle's free-flow speed."""
    mean = sum(w * (sum(mix.speeds[c]) / 2) for c, w in shares.items())
    square = sum(w * ((sum(mix.speeds[c]) / 2) ** 2 + _uniform_var(*mix.speeds[c]))
                 for c, w in shares.items())  # fmt: skip
    return mean, math.sqrt(max(square - mean * mean, 0.0))


def _uniform_var(low: float, high: float) -> float:
    return (high - low) ** 2 / 12


def _slot_values(key: SlotKey, baseline: SlotBaseline) -> tuple[object, ...]:
    """A slot's key and figures: the first columns of a baselines row (`COLUMNS`)."""
    camera_id, day, slot = key
    return (
        camera_id,
        day,
        slot,
        baseline.vehicles,
        baseline.vehicles_mad,
        baseline.speed_kmh,
        baseline.speed_mad,
        baseline.violation_rate,
        *[baseline.class_share.get(c, 0.0) for c in VEHICLE_CLASSES],
    )


def baseline_row(
    key: SlotKey,
    baseline: SlotBaseline,
    *,
    samples: int,
    source: str,
    version: int,
    effective_from: datetime,
) -> dict[str, object]:
    """A row of `traffic_baseline_versions`, its columns in the order of `COLUMNS`."""
    values = (*_slot_values(key, baseline), samples, source, version, effective_from)
    return dict(zip(COLUMNS, values, strict=True))


def prior_columns(
    priors: Mapping[SlotKey, SlotBaseline], version: int, effective_from: datetime = ALWAYS
) -> list[list[object]]:
    """The priors as the columns of `COLUMNS` (source 'prior', no samples), for one
    column-oriented insert: a fresh worker writes 56,448 of them, and a dict per row, then a
    list per row, cost it ~0.5 s against ~0.1 (issue 20)."""
    count = len(priors)
    if not count:  # a profile without cameras
        return [[] for _ in COLUMNS]
    rows = map(_slot_values, priors, priors.values())
    columns = [list(column) for column in zip(*rows, strict=True)]
    return [*columns, [0] * count, [PRIOR_SOURCE] * count, [version] * count,
            [effective_from] * count]  # fmt: skip
