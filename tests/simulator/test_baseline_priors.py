"""The baseline priors say what the simulator actually produces, within Poisson noise."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime
from random import Random
from statistics import fmean, median, pvariance

import pytest

from city.calendar import DAY_TYPES, DayType
from city.clock import local_time
from city.profile import CityProfile, load_city_profile
from schemas.camera import VEHICLE_CLASSES
from simulator.baseline_priors import MAD_PER_SD, prior_baselines, prior_columns, slot_moments
from simulator.demand import (
    CameraDemand,
    Moment,
    camera_demand,
    demand_level,
    flow_level,
    speed_factor,
)
from simulator.mix import CameraMix, camera_mix, class_table
from simulator.traffic import camera_events
from streams.traffic.anomaly.baselines import COLUMNS, SLOTS_PER_DAY, SlotBaseline, SlotKey, slot_of

# An arterial, a beach-road PTZ, a side street and an urban-management camera (no speeds).
CAMERAS = ("VT-CAM-001", "VT-CAM-002", "VT-CAM-004", "VT-CAM-007")
# Standard error of a median of n normal samples, per standard deviation, times √n.
MEDIAN_SE = 1.2533
SIGMAS = 4.0
SLOT_ROOT = math.sqrt(15)  # minutes per slot


@pytest.fixture(scope="module")
def city() -> CityProfile:
    full = load_city_profile()
    return full.model_copy(
        update={"cameras": tuple(c for c in full.cameras if c.camera_id in CAMERAS)}
    )


@pytest.fixture(scope="module")
def priors(city: CityProfile) -> dict[SlotKey, SlotBaseline]:
    return prior_baselines(city)


class Minute:
    def __init__(self) -> None:
        self.classes: Counter[str] = Counter()
        self.speeds: list[float] = []
        self.violations = 0


def simulated_minutes(
    city: CityProfile, start: str, hours: int
) -> dict[tuple[str, DayType, int], list[Minute]]:
    """Per camera, kind of day and slot: the minutes the simulator produced."""
    start_ms = int(datetime.fromisoformat(start).timestamp() * 1000)
    minutes: dict[tuple[str, int], Minute] = defaultdict(Minute)
    for event in camera_events(city, start_ms, start_ms + hours * 3_600_000, Random(11)):
        ts = event["ts"]
        at = ts if isinstance(ts, int) else datetime.fromisoformat(str(ts)).timestamp() * 1000
        minute = minutes[(str(event["camera_id"]), int(at) // 60_000)]
        if event["kind"] == "passage":
            minute.classes[str(event["vehicle_class"])] += 1
            if "speed_kmh" in event:
                minute.speeds.append(float(str(event["speed_kmh"])))
        elif event["kind"] == "violation":
            minute.violations += 1
    slots: dict[tuple[str, DayType, int], list[Minute]] = defaultdict(list)
    for camera_id in CAMERAS:
        for n in range(hours * 60):
            minute_ms = start_ms + n * 60_000
            day, slot = slot_of(local_time(minute_ms, load_city_profile().tz))
            slots[(camera_id, day, slot)].append(minutes[(camera_id, minute_ms // 60_000)])
    return slots


WINDOWS = [
    ("2024-09-18T07:00:00+07:00", 2),  # a weekday morning peak
    ("2024-09-21T22:00:00+07:00", 1),  # a Saturday night: more trucks, few vehicles
    ("2024-09-22T11:00:00+07:00", 1),  # a Sunday midday: beach visitors
]


@pytest.mark.parametrize(("start", "hours"), WINDOWS)
def test_medians_of_each_slot_match_the_priors(
    city: CityProfile, priors: dict[SlotKey, SlotBaseline], start: str, hours: int
) -> None:
    for (camera_id, day, slot), minutes in simulated_minutes(city, start, hours).items():
        prior = priors[(camera_id, day, slot)]
        counts = [sum(m.classes.values()) for m in minutes]
        assert len(counts) == 15
        sd = max(prior.vehicles_mad / 0.6745, 0.5)
        assert abs(median(counts) - prior.vehicles) <= SIGMAS * MEDIAN_SE * sd / SLOT_ROOT + 0.5, (
            camera_id, slot, counts, prior.vehicles,
        )  # fmt: skip
        speeds = [fmean(m.speeds) for m in minutes if m.speeds]
        if prior.speed_kmh is None:
            assert speeds == []
            continue
        speed_sd = prior.speed_mad / 0.6745
        # Speeding violations (~0.2 % of passages at limit + 20 km/h) are not in the prior.
        assert (
            abs(median(speeds) - prior.speed_kmh) <= SIGMAS * MEDIAN_SE * speed_sd / SLOT_ROOT + 0.3
        )


@pytest.mark.parametrize(("start", "hours"), WINDOWS)
def test_spreads_rates_and_shares_match_the_priors(
    city: CityProfile, priors: dict[SlotKey, SlotBaseline], start: str, hours: int
) -> None:
    by_camera: dict[str, list[tuple[SlotBaseline, list[Minute]]]] = defaultdict(list)
    for (camera_id, day, slot), minutes in simulated_minutes(city, start, hours).items():
        by_camera[camera_id].append((priors[(camera_id, day, slot)], minutes))
    for camera_id, slots in by_camera.items():
        # MADs of 15 minutes are noisy; over all of the window's slots they agree.
        observed = fmean(_mad([sum(m.classes.values()) for m in ms]) for _, ms in slots)
        expected = fmean(prior.vehicles_mad for prior, _ in slots)
        assert 0.6 * expected - 0.3 <= observed <= 1.4 * expected + 0.3, camera_id
        classes = sum((m.classes for _, ms in slots for m in ms), Counter[str]())
        passages = sum(classes.values())
        violations = sum(m.violations for _, ms in slots for m in ms)
        prior = slots[0][0]
        assert _within(violations, passages, prior.violation_rate), camera_id
        for vehicle_class in ("motorbike", "car", "truck"):
            share = prior.class_share[vehicle_class]
            assert _within(classes[vehicle_class], passages, share), (camera_id, vehicle_class)


def _mad(values: list[int]) -> float:
    center = median(values)
    return median(abs(v - center) for v in values)


def _within(hits: int, trials: int, p: float) -> bool:
    return abs(hits / trials - p) <= SIGMAS * math.sqrt(p * (1 - p) / trials) + 1e-9


def test_priors_cover_every_camera_kind_of_day_and_slot(
    city: CityProfile, priors: dict[SlotKey, SlotBaseline]
) -> None:
    assert len(priors) == len(CAMERAS) * len(DAY_TYPES) * SLOTS_PER_DAY
    columns = dict(zip(COLUMNS, prior_columns(priors, version=7), strict=True))
    assert {len(values) for values in columns.values()} == {len(priors)}
    stamps = zip(columns["source"], columns["samples"], columns["version"], strict=True)
    assert set(stamps) == {("prior", 0, 7)}
    for shares in zip(*(columns[f"{c}_share"] for c in VEHICLE_CLASSES), strict=True):
        assert math.isclose(sum(float(str(share)) for share in shares), 1.0)
    # The urban-management camera is not speed-calibrated: no speed to expect.
    assert priors[("VT-CAM-004", "weekday", 30)].speed_kmh is None
    # Weekday peaks are far busier than 3 am; Sunday midday on a beach road beats a weekday's.
    assert (
        priors[("VT-CAM-002", "weekday", 31)].vehicles
        > 10 * priors[("VT-CAM-002", "weekday", 12)].vehicles
    )
    assert (
        priors[("VT-CAM-001", "sunday_holiday", 48)].vehicles
        > priors[("VT-CAM-001", "weekday", 48)].vehicles
    )


def test_priors_equal_the_model_computed_minute_by_minute(
    city: CityProfile, priors: dict[SlotKey, SlotBaseline]
) -> None:
    """The array computation (for a fast start) gives what the model's scalar functions give,
    minute by minute, to the last bits of rounding."""
    for camera in city.cameras:
        demand, mix = camera_demand(camera), camera_mix(camera)
        for day in DAY_TYPES:
            for slot in range(SLOTS_PER_DAY):
                expected = _slot_prior(demand, mix, slot_moments(day, slot, city.tz))
                actual = priors[(camera.camera_id, day, slot)]
                assert dict(actual.class_share) == dict(expected.class_share)
                assert actual.violation_rate == expected.violation_rate
                assert (actual.speed_kmh is None) == (expected.speed_kmh is None)
                pairs = [
                    (actual.vehicles, expected.vehicles),
                    (actual.vehicles_mad, expected.vehicles_mad),
                    (actual.speed_kmh or 0.0, expected.speed_kmh or 0.0),
                    (actual.speed_mad, expected.speed_mad),
                ]
                for got, want in pairs:
                    assert math.isclose(got, want, rel_tol=1e-12), (camera.camera_id, day, slot)


def _slot_prior(demand: CameraDemand, mix: CameraMix, moments: list[Moment]) -> SlotBaseline:
    """The expected minute of a camera over a slot's `moments`, one minute at a time (the
    priors' computation before it worked on arrays)."""
    levels = [demand_level(demand, moment) for moment in moments]
    per_minute = [flow_level(level) * demand.peak_per_s * 60 for level in levels]
    vehicles = fmean(per_minute)
    shares = class_table(moments[0].night, moments[0].leisure and demand.camera.beach_road).shares()
    speed_kmh: float | None = None
    speed_mad = 0.0
    if mix.reports_speed:
        mean = sum(w * (sum(mix.speeds[c]) / 2) for c, w in shares.items())
        square = sum(
            w * ((sum(mix.speeds[c]) / 2) ** 2 + (mix.speeds[c][1] - mix.speeds[c][0]) ** 2 / 12)
            for c, w in shares.items()
        )
        spread = math.sqrt(max(square - mean * mean, 0.0))
        factors = [speed_factor(level) for level in levels]
        minute_means = [mean * factor for factor in factors]
        within = fmean(
            (spread * f) ** 2 / max(n, 1.0) for f, n in zip(factors, per_minute, strict=True)
        )
        speed_kmh = fmean(minute_means)
        speed_mad = MAD_PER_SD * math.sqrt(within + pvariance(minute_means))
    return SlotBaseline(
        vehicles=vehicles,
        vehicles_mad=MAD_PER_SD * math.sqrt(vehicles + pvariance(per_minute)),
        speed_kmh=speed_kmh,
        speed_mad=speed_mad,
        violation_rate=mix.violation_share,
        class_share={c: shares.get(c, 0.0) for c in VEHICLE_CLASSES},
    )
