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
from datetime import date, datetime, timedelta, tzinfo
from statistics import fmean

from city.calendar import DAY_TYPES, DayType
from city.profile import CityProfile
from schemas.camera import VEHICLE_CLASSES
from simulator.demand import (
    CameraDemand,
    Moment,
    camera_demand,
    demand_level,
    flow_level,
    speed_factor,
)
from simulator.mix import CameraMix, camera_mix, class_table
from streams.traffic.anomaly.baselines import (
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


def slot_prior(demand: CameraDemand, mix: CameraMix, moments: list[Moment]) -> SlotBaseline:
    """The expected minute of a camera (its demand and mix) over a slot's `moments`."""
    levels = [demand_level(demand, moment) for moment in moments]
    per_minute = [flow_level(level) * demand.peak_per_s * 60 for level in levels]
    vehicles = fmean(per_minute)
    # Slots start and end on the hour or quarter, so night (22–6) and leisure hold throughout.
    shares = class_table(moments[0].night, moments[0].leisure and demand.camera.beach_road).shares()
    speed_kmh: float | None = None
    speed_mad = 0.0
    if mix.reports_speed:
        # Each class drives uniformly within its free-flow range, times the slot's slowdown.
        mean = sum(w * (sum(mix.speeds[c]) / 2) for c, w in shares.items())
        square = sum(w * ((sum(mix.speeds[c]) / 2) ** 2 + _uniform_var(*mix.speeds[c]))
                     for c, w in shares.items())  # fmt: skip
        spread = math.sqrt(max(square - mean * mean, 0.0))
        factors = [speed_factor(level) for level in levels]
        minute_means = [mean * factor for factor in factors]
        # A minute's mean over about λ vehicles (at least the one that reported a speed).
        within = fmean(
            (spread * f) ** 2 / max(n, 1.0) for f, n in zip(factors, per_minute, strict=True)
        )
        speed_kmh = fmean(minute_means)
        speed_mad = MAD_PER_SD * math.sqrt(within + _variance(minute_means))
    return SlotBaseline(
        vehicles=vehicles,
        vehicles_mad=MAD_PER_SD * math.sqrt(vehicles + _variance(per_minute)),
        speed_kmh=speed_kmh,
        speed_mad=speed_mad,
        violation_rate=mix.violation_share,
        class_share={c: shares.get(c, 0.0) for c in VEHICLE_CLASSES},
    )


def _variance(values: list[float]) -> float:
    # statistics.pvariance is exact (fractions) and a hundred times slower; this is plenty.
    mean = fmean(values)
    return fmean((v - mean) ** 2 for v in values)


def _uniform_var(low: float, high: float) -> float:
    return (high - low) ** 2 / 12


def prior_baselines(profile: CityProfile) -> dict[SlotKey, SlotBaseline]:
    """Every camera × kind of day × slot of the profile."""
    cameras = [(camera_demand(camera), camera_mix(camera)) for camera in profile.cameras]
    priors: dict[SlotKey, SlotBaseline] = {}
    for day in DAY_TYPES:
        for slot in range(SLOTS_PER_DAY):
            moments = slot_moments(day, slot, profile.tz)
            for demand, mix in cameras:
                priors[(demand.camera.camera_id, day, slot)] = slot_prior(demand, mix, moments)
    return priors


def baseline_row(
    key: SlotKey, baseline: SlotBaseline, *, samples: int, source: str, version: int
) -> dict[str, object]:
    """A `traffic_baselines` row, its columns in the order of the baselines' `COLUMNS`."""
    camera_id, day, slot = key
    return {
        "camera_id": camera_id,
        "day_type": day,
        "slot": slot,
        "vehicles_median": baseline.vehicles,
        "vehicles_mad": baseline.vehicles_mad,
        "speed_median": baseline.speed_kmh,
        "speed_mad": baseline.speed_mad,
        "violation_rate": baseline.violation_rate,
        **{f"{c}_share": baseline.class_share.get(c, 0.0) for c in VEHICLE_CLASSES},
        "samples": samples,
        "source": source,
        "version": version,
    }


def prior_rows(profile: CityProfile, version: int) -> list[dict[str, object]]:
    """The priors as `traffic_baselines` rows (source 'prior', no samples)."""
    return [
        baseline_row(key, baseline, samples=0, source=PRIOR_SOURCE, version=version)
        for key, baseline in prior_baselines(profile).items()
    ]
