"""What a camera has shown of itself: the detector's own learning where a slot's baseline is
still the simulator's prior (cold start: a fresh deployment, a new camera, a thin slot).

A prior tells the city's shape over a day, not this camera's level: a real camera may count
a third or three times what the model expected, at other speeds and with another mix. So the
prior alone never judges traffic. Each healthy camera-minute adds to its hour's tally; once
`MIN_HOURS` complete hours are in, the camera's level is the median of its hourly
observed/prior ratios (a bad hour or two do not move it), and the rules judge against the
prior's shape times that level, the camera's own speed, class mix and violation rate. Until
`CONFIDENT_HOURS` such hours are in, the flow rules' bounds are widened (`Rules.*_own`); after
them the camera is judged as a learned slot is.

Speed settles much faster than volume: a minute's mean over a handful of vehicles already says
how fast a road drives. So congestion does not wait for those hours: it is judged against the
camera's first `SPEED_MINUTES` minutes with at least `MIN_MINUTE_SPEEDS` speeds each (the median
of their ratios to the prior's speed, times the prior's speed of the slot judged, so the day's
shape, slower at the peaks, is the prior's), until the complete hours give its speed. Everything
here is a function of the minutes in order, so a replay learns the same.
"""

from __future__ import annotations

from dataclasses import replace
from statistics import median
from typing import NamedTuple

from city.clock import HOUR_MS, aligned_start
from schemas.camera import VEHICLE_CLASSES
from streams.traffic.anomaly.baselines import SlotBaseline
from streams.traffic.anomaly.state import CameraWatch, HourTally, Minute

HOURS_KEPT = 24
MIN_HOURS = 2
CONFIDENT_HOURS = 12
# An hour counts once it has this many healthy minutes and the prior expected this many
# vehicles in them: a night hour of five cars says little about a level.
MIN_HOUR_MINUTES = 30
MIN_HOUR_EXPECTED = 60.0
MIN_HOUR_SPEEDS = 30
# The prior's violation rate weighs as this many vehicles, so a camera that has shown few
# vehicles is not judged on a handful of violations.
PRIOR_VEHICLES = 500.0
# Ten minutes of five speeds or more: the demo's jam (VT-CAM-099 from its 15th minute) and a
# city run's (from the 20th) are judged; a camera's minute means vary by a few percent around
# its level, far inside the congestion rule's 0.6.
SPEED_MINUTES = 10
MIN_MINUTE_SPEEDS = 5


class UsualSpeed(NamedTuple):
    """What the congestion rule judges a minute's mean speed against."""

    kmh: float
    scale: float  # its robust standard deviation


def usual_speed(baseline: SlotBaseline) -> UsualSpeed | None:
    if baseline.speed_kmh is None:
        return None
    return UsualSpeed(baseline.speed_kmh, baseline.speed_scale())


def tally(hours: list[HourTally], minute: Minute, prior: SlotBaseline) -> list[HourTally]:
    """`hours` with a healthy `minute` added to its hour (the last `HOURS_KEPT` complete hours
    and the current one are kept)."""
    start = aligned_start(minute.start_ms, HOUR_MS)
    if not hours or hours[-1].start_ms != start:
        hours = [*hours, HourTally(start)][-(HOURS_KEPT + 1) :]
    hour = hours[-1]
    hour.minutes += 1
    hour.vehicles += minute.vehicles
    hour.expected += prior.vehicles
    hour.speed_sum += minute.speed_sum
    hour.speed_n += minute.speed_n
    hour.violations += minute.violations
    hour.classes = [n + m for n, m in zip(hour.classes, minute.classes, strict=True)]
    return hours


def own_baseline(hours: list[HourTally], prior: SlotBaseline) -> SlotBaseline | None:
    """The camera's own baseline for a slot whose `prior` gives the shape (`learned` once it is
    sure of it); None until the camera has shown enough complete hours."""
    complete = [
        h for h in hours[:-1] if h.minutes >= MIN_HOUR_MINUTES and h.expected >= MIN_HOUR_EXPECTED
    ]
    if len(complete) < MIN_HOURS:
        return None
    level = median(h.vehicles / h.expected for h in complete)
    speeds = [h.speed_sum / h.speed_n for h in complete if h.speed_n >= MIN_HOUR_SPEEDS]
    vehicles = sum(h.vehicles for h in complete)
    violations = sum(h.violations for h in complete)
    classes = [sum(h.classes[i] for h in complete) for i in range(len(VEHICLE_CLASSES))]
    return SlotBaseline(
        vehicles=prior.vehicles * level,
        vehicles_mad=prior.vehicles_mad * level,
        speed_kmh=median(speeds) if speeds else None,
        speed_mad=prior.speed_mad,
        violation_rate=(violations + PRIOR_VEHICLES * prior.violation_rate)
        / (vehicles + PRIOR_VEHICLES),
        class_share={c: n / vehicles for c, n in zip(VEHICLE_CLASSES, classes, strict=True)}
        if vehicles
        else prior.class_share,
        learned=len(complete) >= CONFIDENT_HOURS,
    )


def sample_speed(ratios: list[float], minute: Minute, prior: SlotBaseline) -> list[float]:
    """`ratios` (the camera's first minutes' mean speed over the prior's) with a healthy
    `minute` added, while fewer than `SPEED_MINUTES` are in and it has enough speeds."""
    if (
        len(ratios) >= SPEED_MINUTES
        or minute.speed is None
        or minute.speed_n < MIN_MINUTE_SPEEDS
        or not prior.speed_kmh
    ):
        return ratios
    return [*ratios, minute.speed / prior.speed_kmh]


def own_speed(ratios: list[float], prior: SlotBaseline) -> UsualSpeed | None:
    """The camera's usual speed in the slot whose `prior` gives the shape, from its first
    minutes; None until `SPEED_MINUTES` are in (or where the prior knows no speed)."""
    if len(ratios) < SPEED_MINUTES or prior.speed_kmh is None:
        return None
    level = median(ratios)
    return usual_speed(replace(prior, speed_kmh=prior.speed_kmh * level,
                               speed_mad=prior.speed_mad * level))  # fmt: skip


def judged_by(
    camera: CameraWatch, minute: Minute, slot: SlotBaseline | None
) -> SlotBaseline | None:
    """The baseline a healthy minute is judged by: its learned slot, or where the slot is only
    the prior, the camera's own level over the prior's shape (None until it has one)."""
    if slot is None or slot.learned:
        return slot
    camera.hours = tally(camera.hours, minute, slot)
    own = own_baseline(camera.hours, slot)
    if own is None:
        minute.basis = "prior"
        return None
    minute.expected, minute.basis = own.vehicles, "learned" if own.learned else "own"
    return own


def speed_judged_by(
    camera: CameraWatch, minute: Minute, slot: SlotBaseline | None, baseline: SlotBaseline | None
) -> UsualSpeed | None:
    """The usual speed a healthy minute is judged by: its baseline's, or on a prior slot whose
    camera has no level yet, its first minutes' speed over the prior's shape."""
    if baseline is not None and baseline.speed_kmh is not None:
        return usual_speed(baseline)
    if slot is None or slot.learned:
        return None
    camera.speed_ratios = sample_speed(camera.speed_ratios, minute, slot)
    return own_speed(camera.speed_ratios, slot)
