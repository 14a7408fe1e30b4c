"""The anomaly rules, one function each: given what a camera (or a partition) showed in the
minute just settled and the baseline it is judged by, open, update or resolve its alerts.

Pure and synchronous: the watch (watch.py) keeps the state and calls them once per settled
camera-minute; their parameters and the reasons for them are in `Rules` and in the README's
"Traffic anomalies" table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

from city.clock import MINUTE_MS
from schemas.camera import VEHICLE_CLASSES
from streams.engine.definition import Records
from streams.traffic.anomaly.alerts import (
    PARTITION_WIDE,
    About,
    AlertLog,
    Evidence,
    Finding,
    Severity,
)
from streams.traffic.anomaly.baselines import SlotBaseline
from streams.traffic.anomaly.camera_level import UsualSpeed
from streams.traffic.anomaly.kinds import Kind
from streams.traffic.anomaly.state import CameraWatch, Minute, WatchState
from streams.traffic.anomaly.tail_tests import binomial_tail, poisson_tail


@dataclass(frozen=True)
class Rules:
    offline_after_ms: int = 90_000
    site_share: float = 0.5
    site_min_cameras: int = 4
    silent_expected: float = 14.0
    silent_min_minutes: int = 2
    stuck_minutes: int = 5
    stuck_min_speeds: int = 3
    repeat_minutes: int = 8
    repeat_min_vehicles: int = 5
    stuck_class_share: float = 0.95
    stuck_usual_share: float = 0.8
    stuck_class_tail: float = 1e-9
    congestion_ratio: float = 0.6
    congestion_clear: float = 0.8
    congestion_critical: float = 0.4
    speed_z: float = 3.0
    congestion_k: int = 3
    congestion_n: int = 5
    congestion_min_speeds: int = 5
    flow_minutes: int = 5
    flow_drop: float = 0.5
    flow_surge: float = 1.8
    flow_z: float = 4.0
    # Beyond Poisson noise: the baseline itself is uncertain by about this share.
    flow_dispersion: float = 0.1
    flow_min_expected: float = 20.0
    flow_persist: int = 2
    flow_clear_low: float = 0.7
    flow_clear_high: float = 1.4
    # The same judged against a camera's own level over the prior's shape (cold start).
    flow_drop_own: float = 0.35
    flow_surge_own: float = 2.5
    flow_clear_low_own: float = 0.5
    flow_clear_high_own: float = 2.0
    citywide_low: float = 0.6
    citywide_high: float = 1.6
    citywide_clear_low: float = 0.75
    citywide_clear_high: float = 1.3
    citywide_minutes: int = 5
    citywide_min_cameras: int = 5
    # 15 minutes and 1e-5: a quiet camera (0.2 violations a minute) shows a fivefold spike
    # within 15 minutes; 10 and 1e-6 missed 1 in 8 spikes there (benchmarks.anomalies).
    violation_minutes: int = 15
    violation_tail: float = 1e-5
    violation_factor: float = 3.0
    violation_min: int = 5
    violation_clear_factor: float = 2.0
    clear_minutes: int = 3


@dataclass(frozen=True)
class Judge:
    """What every rule judges with: its parameters and the alert log it writes through."""

    rules: Rules
    alerts: AlertLog


def city_factor(judge: Judge, judged: list[tuple[CameraWatch, SlotBaseline | None]]) -> float:
    """The median ratio of observed to expected flow over the partition's healthy cameras:
    what rain, a holiday or a festival does to everyone."""
    ratios = []
    for camera, baseline in judged:
        if baseline is None:
            continue
        observed, expected = _trailing_flow(camera, judge.rules.flow_minutes)
        if expected >= judge.rules.flow_min_expected:
            ratios.append(observed / expected)
    if len(ratios) < judge.rules.citywide_min_cameras:
        return 1.0
    return median(ratios)


def judge_city(
    judge: Judge, watch: WatchState, start_ms: int, factor: float, records: Records
) -> None:
    rules, city = judge.rules, watch.partition
    partition = About(PARTITION_WIDE, city.incidents, records, watch.name)
    shifted = factor <= rules.citywide_low or factor >= rules.citywide_high
    city.city_streak = city.city_streak + 1 if shifted else 0
    evidence = Evidence(factor, 1.0, factor, factor)
    if city.city_streak >= rules.citywide_minutes:
        first = start_ms - (city.city_streak - 1) * MINUTE_MS
        judge.alerts.raise_(
            partition, Finding("citywide_shift", start_ms + MINUTE_MS, first, evidence, "info")
        )
    calm = rules.citywide_clear_low <= factor <= rules.citywide_clear_high
    judge.alerts.settle(partition, "citywide_shift", calm, start_ms)


def judge_silent(judge: Judge, camera: CameraWatch, start_ms: int, records: Records) -> None:
    rules, minute = judge.rules, camera.minutes[-1]
    about = About(camera.camera_id, camera.incidents, records)
    if minute.vehicles == 0:
        camera.zero_minutes += 1
        camera.zero_expected += minute.expected
    else:
        camera.zero_minutes, camera.zero_expected = 0, 0.0
    if (
        camera.zero_minutes >= rules.silent_min_minutes
        and camera.zero_expected >= rules.silent_expected
    ):
        first = start_ms - (camera.zero_minutes - 1) * MINUTE_MS
        evidence = Evidence(0.0, camera.zero_expected, 0.0, camera.zero_expected)
        for silent in camera.minutes[-camera.zero_minutes :]:
            silent.healthy = False
        judge.alerts.raise_(
            about, Finding("camera_silent", start_ms + MINUTE_MS, first, evidence, "warning")
        )
    calm = minute.vehicles > 0
    judge.alerts.settle(about, "camera_silent", calm, start_ms, clear_minutes=1)


def judge_stuck(
    judge: Judge,
    camera: CameraWatch,
    baseline: SlotBaseline | None,
    start_ms: int,
    records: Records,
) -> None:
    rules, minutes = judge.rules, camera.minutes
    about = About(camera.camera_id, camera.incidents, records)
    evidence: Evidence | None = None
    span = rules.stuck_minutes  # the minutes of the rule that held, which date the alert
    recent = _healthy(minutes, rules.stuck_minutes)
    speeds = [m.speed for m in recent if m.speed_n >= rules.stuck_min_speeds]
    if recent and len(speeds) == len(recent):
        known = [s for s in speeds if s is not None]
        if max(known) - min(known) < 0.05:
            evidence = Evidence(known[-1], known[-1], 1.0, float(len(known)))
    counts = [m.vehicles for m in _healthy(minutes, rules.repeat_minutes)]
    if counts and min(counts) >= rules.repeat_min_vehicles and len(set(counts)) == 1:
        evidence = Evidence(counts[-1], counts[-1], 1.0, float(len(counts)))
        span = rules.repeat_minutes
    if baseline is not None:
        totals = [sum(m.classes[i] for m in recent) for i in range(len(VEHICLE_CLASSES))]
        vehicles = sum(totals)
        if vehicles:
            top = max(range(len(totals)), key=totals.__getitem__)
            share = totals[top] / vehicles
            usual = baseline.class_share[VEHICLE_CLASSES[top]]
            tail = binomial_tail(totals[top], vehicles, usual)
            if (
                share >= rules.stuck_class_share
                and usual < rules.stuck_usual_share
                and tail < rules.stuck_class_tail
            ):
                score = -math.log10(max(tail, 1e-300))
                evidence = Evidence(share, usual, share / max(usual, 0.01), score)
                span = rules.stuck_minutes
    if evidence is not None:
        first = start_ms - (span - 1) * MINUTE_MS
        judge.alerts.raise_(
            about, Finding("camera_stuck", start_ms + MINUTE_MS, first, evidence, "warning")
        )
    judge.alerts.settle(about, "camera_stuck", evidence is None, start_ms)


def judge_congestion(
    judge: Judge, camera: CameraWatch, usual_speed: UsualSpeed, start_ms: int, records: Records
) -> None:
    rules, minute = judge.rules, camera.minutes[-1]
    about = About(camera.camera_id, camera.incidents, records)
    usual = usual_speed.kmh
    speed = minute.speed
    if speed is None or minute.speed_n < rules.congestion_min_speeds:
        return
    ratio = speed / usual
    z = (speed - usual) / usual_speed.scale
    slow = ratio <= rules.congestion_ratio and z <= -rules.speed_z
    camera.congested = [*camera.congested, int(slow)][-rules.congestion_n :]
    # Only a slow minute is evidence: the minutes after a jam would otherwise refresh the
    # alert with normal speeds while k of n still holds.
    if slow and sum(camera.congested) >= rules.congestion_k:
        run = len(camera.congested) - camera.congested.index(1)
        first = start_ms - (run - 1) * MINUTE_MS
        severity: Severity = "critical" if ratio <= rules.congestion_critical else "warning"
        judge.alerts.raise_(
            about,
            Finding(
                "congestion",
                start_ms + MINUTE_MS,
                first,
                Evidence(speed, usual, ratio, z),
                severity,
            ),
        )
    judge.alerts.settle(about, "congestion", ratio >= rules.congestion_clear, start_ms)


def judge_flow(
    judge: Judge, camera: CameraWatch, factor: float, start_ms: int, records: Records
) -> None:
    rules = judge.rules
    about = About(camera.camera_id, camera.incidents, records)
    observed, baseline_expected = _trailing_flow(camera, rules.flow_minutes)
    expected = baseline_expected * factor
    if expected < rules.flow_min_expected:
        camera.streaks.clear()
        return
    ratio = observed / expected
    z = flow_z(rules, observed, expected)
    # A level learned over a borrowed shape is less sure than a learned slot: wider bounds.
    own = any(m.basis == "own" for m in camera.minutes[-rules.flow_minutes :])
    drop, surge = (rules.flow_drop_own, rules.flow_surge_own) if own else (
        rules.flow_drop, rules.flow_surge)  # fmt: skip
    kind: Kind | None = None
    if ratio <= drop and z <= -rules.flow_z:
        kind = "flow_drop"
    elif ratio >= surge and z >= rules.flow_z:
        kind = "flow_surge"
    streak = camera.streaks.get(kind or "", 0) + 1 if kind else 0
    camera.streaks = {kind: streak} if kind else {}
    if kind is not None and streak >= rules.flow_persist:
        first = start_ms - (streak - 1) * MINUTE_MS
        judge.alerts.raise_(
            about,
            Finding(
                kind,
                start_ms + MINUTE_MS,
                first,
                Evidence(observed, expected, ratio, z),
                "warning",
            ),
        )
    low, high = (rules.flow_clear_low_own, rules.flow_clear_high_own) if own else (
        rules.flow_clear_low, rules.flow_clear_high)  # fmt: skip
    calm = low <= ratio <= high
    for flow_kind in ("flow_drop", "flow_surge"):
        judge.alerts.settle(about, flow_kind, calm, start_ms)


def judge_violations(
    judge: Judge, camera: CameraWatch, baseline: SlotBaseline, start_ms: int, records: Records
) -> None:
    rules = judge.rules
    about = About(camera.camera_id, camera.incidents, records)
    recent = _healthy(camera.minutes, rules.violation_minutes)
    if not recent:
        judge.alerts.settle(about, "violation_spike", False, start_ms)
        return
    violations = sum(m.violations for m in recent)
    expected = baseline.violation_rate * sum(m.vehicles for m in recent)
    tail = poisson_tail(violations, expected)
    if (
        violations >= rules.violation_min
        and violations >= rules.violation_factor * expected
        and tail < rules.violation_tail
    ):
        first = start_ms - (len(recent) - 1) * MINUTE_MS
        evidence = violation_evidence(violations, expected)
        judge.alerts.raise_(
            about, Finding("violation_spike", start_ms + MINUTE_MS, first, evidence, "warning")
        )
    calm = violations <= rules.violation_clear_factor * max(expected, 1.0)
    judge.alerts.settle(about, "violation_spike", calm, start_ms)


def flow_z(rules: Rules, observed: float, expected: float) -> float:
    """Poisson noise plus the baseline's own uncertainty (`flow_dispersion`)."""
    return (observed - expected) / math.sqrt(expected + (rules.flow_dispersion * expected) ** 2)


def violation_evidence(violations: int, expected: float) -> Evidence:
    score = -math.log10(max(poisson_tail(violations, expected), 1e-300))
    return Evidence(violations, expected, violations / max(expected, 1e-9), score)


def _healthy(minutes: list[Minute], count: int) -> list[Minute]:
    """The last `count` minutes when all of them are healthy evidence, else none."""
    recent = minutes[-count:]
    return recent if len(recent) == count and all(m.healthy for m in recent) else []


def _trailing_flow(camera: CameraWatch, minutes: int) -> tuple[float, float]:
    """(vehicles, baseline vehicles) over the camera's last `minutes` healthy minutes; nothing
    expected while any of them had only the prior to go by (camera_level.py)."""
    recent = _healthy(camera.minutes, minutes)
    if any(m.basis == "prior" for m in recent):
        return 0.0, 0.0
    return float(sum(m.vehicles for m in recent)), sum(m.expected for m in recent)
