"""Traffic anomalies: incidents opened, updated and resolved per camera, in event time.

The detector rides on the traffic stream's partitions (camera events are keyed by camera, so
one partition sees all of a camera): `TrafficFlow.fold` shows it every new event, and it keeps
its own state in the partition's keyed state, checkpointed with the windows. Decisions are
taken on ticks of the partition's stream time, every `TICK_MS`, once `SETTLE_MS` more of
stream time has passed (so events a little out of order are in): only the order of events in a
partition matters, never the wall clock or where a checkpoint fell, so replaying a topic range
reproduces the same alerts, ids and versions. A pipeline that falls behind does not advance
stream time, and so raises nothing; a dead pipeline is the pipeline-health rule's job.

Each minute of each camera is judged once, against its baseline (baselines.py), from
the flow window the traffic stream is filling. Events that arrive after that (late, but within
the flow window's grace) still count in `traffic_flow_1m`; they never retract an alert.

Rules (parameters in `Rules`, their reasons in the README's "Traffic anomalies"):
- camera_offline: no sign of life (a passage, a violation, an online or degraded heartbeat) for
  `offline_after_ms`. A camera that reports offline but keeps counting vehicles is not offline.
  When a large share of a partition's cameras go quiet together, one `site_offline` alert
  stands for them (inhibiting the per-camera ones).
- camera_silent: heartbeats but no vehicles for minutes in which the baseline expected at
  least `silent_expected` vehicles in all, so quiet nights never alarm.
- camera_stuck: the same minute mean speed for `stuck_minutes`, the same non-zero count for
  `repeat_minutes`, or one class at >= `stuck_class_share` where the baseline has it under
  `stuck_usual_share`.
- congestion: minute mean speed <= `congestion_ratio` x baseline with a robust z <= `-speed_z`
  in `congestion_k` of the last `congestion_n` minutes; clears at `congestion_clear`.
- flow_drop / flow_surge: the trailing `flow_minutes` count against the baseline times the
  partition's city factor (the median ratio of its healthy cameras), so rain or a holiday moves
  the factor instead; a factor far from 1 for `citywide_minutes` is one `citywide_shift`.
- violation_spike: the trailing `violation_minutes` violations in a Poisson tail of the
  baseline rate for the vehicles that actually passed.
Where a slot's baseline is only the simulator's prior, the baseline is what the camera has
shown of itself (camera_level.py); the prior alone never judges traffic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import tzinfo
from statistics import median

from city.clock import MINUTE_MS, aligned_start
from schemas.camera import VEHICLE_CLASSES
from schemas.fast import CameraEvent, StatusReport
from streams.definition import Records
from streams.engine.windows import PartitionWindows
from streams.traffic.anomaly.alerts import (
    PARTITION_WIDE,
    About,
    AlertLog,
    Evidence,
    Finding,
    Severity,
    is_open,
)
from streams.traffic.anomaly.baselines import Baselines, SlotBaseline
from streams.traffic.anomaly.camera_level import own_baseline, tally
from streams.traffic.anomaly.kinds import Kind
from streams.traffic.anomaly.state import (
    CameraWatch,
    Minute,
    PartitionWatch,
    camera_from_state,
    partition_from_state,
)
from streams.traffic.anomaly.tail_tests import binomial_tail, poisson_tail
from streams.traffic.flow_counts import FlowCounts

TICK_MS = 10_000
SETTLE_MS = 15_000
# A jump of stream time further than this is judged over its last hour only (a backlog's
# first event, a clock set far ahead): not every tick since the last event.
MAX_CATCH_UP_MS = 3_600_000
HEARTBEATS_KEPT = 3
PARTITION_KEY = "watch"
CAMERA_KEY_PREFIX = "watch:"

ALIVE_STATUSES = frozenset({"online", "degraded"})


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


class AnomalyWatch:
    """The detector of one traffic stream: stateless itself, its state is in each partition's
    keyed state (`PARTITION_KEY`, and `CAMERA_KEY_PREFIX` + camera id)."""

    def __init__(
        self,
        ward_of: dict[str, str],
        baselines: Baselines,
        grace_ms: int,
        tz: tzinfo,
        rules: Rules | None = None,
    ) -> None:
        self._baselines = baselines
        self._tz = tz
        # A minute is judged from its flow window, so before the window can close.
        self._settle_ms = min(SETTLE_MS, grace_ms)
        self.rules = rules or Rules()
        self._alerts = AlertLog(ward_of, baselines.version, self.rules.clear_minutes, tz)
        # The minutes a camera keeps: the longest trailing span any rule looks at.
        self._history = max(
            self.rules.violation_minutes,
            self.rules.repeat_minutes,
            self.rules.flow_minutes,
            self.rules.stuck_minutes,
            self.rules.congestion_n,
        )

    # -- events ---------------------------------------------------------------------------

    def observe(
        self, state: PartitionWindows[FlowCounts], event: CameraEvent, records: Records
    ) -> None:
        """A new, timely event (or a status report): a sign of life, then any ticks it makes due.

        On the hot path: a passage costs two lookups and a comparison unless a tick is due.
        """
        ts = event.ts
        watch = self._partition(state, ts)
        key = CAMERA_KEY_PREFIX + event.camera_id
        camera = state.keyed.get(key)
        if type(camera) is not CameraWatch:
            camera = self._camera(state, watch, event.camera_id, ts)
        alive = True
        if isinstance(event, StatusReport):
            camera.status = event.status
            alive = event.status in ALIVE_STATUSES
            if alive:
                camera.heartbeats = sorted([*camera.heartbeats, ts])[-HEARTBEATS_KEPT:]
            state.put_keyed(key, camera)
        if alive and ts > camera.alive_ms:
            camera.alive_ms = ts
            state.put_keyed(key, camera)
            offline = camera.incidents.get("camera_offline")
            if offline is not None and offline.open:
                # An event a little out of order may predate the opening; never resolve before.
                resolved = max(ts, offline.opened_ms)
                about = About(camera.camera_id, camera.incidents, records)
                self._alerts.clear(about, "camera_offline", resolved)
        now = state.stream_time_ms
        if now is not None and watch.next_tick_ms + self._settle_ms <= now:
            self._run_ticks(state, watch, now, records)

    def _partition(self, state: PartitionWindows[FlowCounts], ts_ms: int) -> PartitionWatch:
        found = state.keyed.get(PARTITION_KEY)
        if type(found) is PartitionWatch:
            return found
        watch = (
            partition_from_state(found)
            if found is not None
            else PartitionWatch(aligned_start(ts_ms, TICK_MS) + TICK_MS)
        )
        state.keyed[PARTITION_KEY] = watch
        return watch

    def _camera(
        self, state: PartitionWindows[FlowCounts], watch: PartitionWatch, camera_id: str, ts_ms: int
    ) -> CameraWatch:
        key = CAMERA_KEY_PREFIX + camera_id
        found = state.keyed.get(key)
        if isinstance(found, CameraWatch):
            return found
        if found is not None:
            camera = camera_from_state(found)
        else:
            camera = CameraWatch(camera_id, alive_ms=ts_ms)
            watch.cameras.append(camera_id)
            state.put_keyed(PARTITION_KEY, watch)
        state.keyed[key] = camera
        return camera

    def _cameras(
        self, state: PartitionWindows[FlowCounts], watch: PartitionWatch
    ) -> Iterator[CameraWatch]:
        for camera_id in watch.cameras:
            camera = self._camera(state, watch, camera_id, watch.next_tick_ms)
            yield camera

    def _run_ticks(
        self, state: PartitionWindows[FlowCounts], watch: PartitionWatch, now: int, records: Records
    ) -> None:
        if now - watch.next_tick_ms > MAX_CATCH_UP_MS:
            watch.next_tick_ms = aligned_start(now - MAX_CATCH_UP_MS, MINUTE_MS)
        while watch.next_tick_ms + self._settle_ms <= now:
            self._tick(state, watch, watch.next_tick_ms, records)
            watch.next_tick_ms += TICK_MS
        state.put_keyed(PARTITION_KEY, watch)

    # -- ticks ----------------------------------------------------------------------------

    def _tick(
        self, state: PartitionWindows[FlowCounts], watch: PartitionWatch, now: int, records: Records
    ) -> None:
        cameras = list(self._cameras(state, watch))
        self._judge_offline(state, watch, cameras, now, records)
        if now % MINUTE_MS == 0:
            self._judge_minute(state, watch, cameras, now - MINUTE_MS, records)

    def _judge_offline(
        self,
        state: PartitionWindows[FlowCounts],
        watch: PartitionWatch,
        cameras: list[CameraWatch],
        now: int,
        records: Records,
    ) -> None:
        rules = self.rules
        partition = About(PARTITION_WIDE, watch.incidents, records)
        quiet = [c for c in cameras if now - c.alive_ms >= rules.offline_after_ms]
        site = len(quiet) >= rules.site_min_cameras and len(quiet) >= rules.site_share * len(
            cameras
        )
        evidence = Evidence(len(quiet), len(cameras), len(quiet) / max(len(cameras), 1), 0.0)
        if site:
            first = min(c.alive_ms for c in quiet) + rules.offline_after_ms
            self._alerts.raise_(
                partition, Finding("site_offline", now, first, evidence, "critical")
            )
        else:
            self._alerts.clear(partition, "site_offline", now, at_once=True)
        quiet_ids = {camera.camera_id for camera in quiet}
        for camera in cameras:
            about = About(camera.camera_id, camera.incidents, records)
            if camera.camera_id not in quiet_ids:
                if is_open(camera.incidents, "camera_offline"):  # held open while flapping
                    self._alerts.clear(about, "camera_offline", now)
                    state.put_keyed(CAMERA_KEY_PREFIX + camera.camera_id, camera)
                continue
            if site:
                continue  # one site alert stands for them all
            silent_s = (now - camera.alive_ms) / 1000
            limit_s = rules.offline_after_ms / 1000
            self._alerts.raise_(
                about,
                Finding(
                    "camera_offline",
                    now,
                    camera.alive_ms + rules.offline_after_ms,
                    Evidence(silent_s, limit_s, silent_s / limit_s, silent_s / limit_s),
                    "critical" if camera.status == "tampered" else "warning",
                ),
            )
            state.put_keyed(CAMERA_KEY_PREFIX + camera.camera_id, camera)

    def _judge_minute(
        self,
        state: PartitionWindows[FlowCounts],
        watch: PartitionWatch,
        cameras: list[CameraWatch],
        start_ms: int,
        records: Records,
    ) -> None:
        rules = self.rules
        judged: list[tuple[CameraWatch, SlotBaseline | None]] = []
        for camera in cameras:
            slot = self._baselines.at(camera.camera_id, start_ms, self._tz)
            minute = _minute_of(state, camera.camera_id, start_ms, slot)
            camera.minutes = [*camera.minutes, minute][-self._history :]
            state.put_keyed(CAMERA_KEY_PREFIX + camera.camera_id, camera)
            end = start_ms + MINUTE_MS
            beating = any(end - rules.offline_after_ms <= h < end for h in camera.heartbeats)
            offline = end - camera.alive_ms >= rules.offline_after_ms
            if (
                offline
                or is_open(camera.incidents, "camera_offline")
                or not (minute.vehicles or beating)
            ):
                minute.healthy = False  # dark: no evidence of anything but that
                camera.zero_minutes, camera.zero_expected = 0, 0.0
                continue
            judged.append((camera, _judged_by(camera, minute, slot)))
        factor = self._city_factor(judged)
        self._judge_city(watch, start_ms, factor, records)
        for camera, baseline in judged:
            self._judge_silent(camera, start_ms, records)
            if is_open(camera.incidents, "camera_silent"):
                continue
            self._judge_stuck(camera, baseline, start_ms, records)
            if baseline is None:
                continue
            self._judge_congestion(camera, baseline, start_ms, records)
            self._judge_flow(camera, factor, start_ms, records)
            self._judge_violations(camera, baseline, start_ms, records)

    # -- rules ----------------------------------------------------------------------------

    def _city_factor(self, judged: list[tuple[CameraWatch, SlotBaseline | None]]) -> float:
        """The median ratio of observed to expected flow over the partition's healthy cameras:
        what rain, a holiday or a festival does to everyone."""
        ratios = []
        for camera, baseline in judged:
            if baseline is None:
                continue
            observed, expected = _trailing_flow(camera, self.rules.flow_minutes)
            if expected >= self.rules.flow_min_expected:
                ratios.append(observed / expected)
        if len(ratios) < self.rules.citywide_min_cameras:
            return 1.0
        return median(ratios)

    def _judge_city(
        self, watch: PartitionWatch, start_ms: int, factor: float, records: Records
    ) -> None:
        rules = self.rules
        partition = About(PARTITION_WIDE, watch.incidents, records)
        shifted = factor <= rules.citywide_low or factor >= rules.citywide_high
        watch.city_streak = watch.city_streak + 1 if shifted else 0
        evidence = Evidence(factor, 1.0, factor, factor)
        if watch.city_streak >= rules.citywide_minutes:
            first = start_ms - (watch.city_streak - 1) * MINUTE_MS
            self._alerts.raise_(
                partition, Finding("citywide_shift", start_ms + MINUTE_MS, first, evidence, "info")
            )
        calm = rules.citywide_clear_low <= factor <= rules.citywide_clear_high
        self._alerts.settle(partition, "citywide_shift", calm, start_ms)

    def _judge_silent(self, camera: CameraWatch, start_ms: int, records: Records) -> None:
        rules, minute = self.rules, camera.minutes[-1]
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
            self._alerts.raise_(
                about, Finding("camera_silent", start_ms + MINUTE_MS, first, evidence, "warning")
            )
        calm = minute.vehicles > 0
        self._alerts.settle(about, "camera_silent", calm, start_ms, clear_minutes=1)

    def _judge_stuck(
        self, camera: CameraWatch, baseline: SlotBaseline | None, start_ms: int, records: Records
    ) -> None:
        rules, minutes = self.rules, camera.minutes
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
            self._alerts.raise_(
                about, Finding("camera_stuck", start_ms + MINUTE_MS, first, evidence, "warning")
            )
        self._alerts.settle(about, "camera_stuck", evidence is None, start_ms)

    def _judge_congestion(
        self, camera: CameraWatch, baseline: SlotBaseline, start_ms: int, records: Records
    ) -> None:
        rules, minute = self.rules, camera.minutes[-1]
        about = About(camera.camera_id, camera.incidents, records)
        usual = baseline.speed_kmh
        speed = minute.speed
        if usual is None or speed is None or minute.speed_n < rules.congestion_min_speeds:
            return
        ratio = speed / usual
        z = (speed - usual) / baseline.speed_scale()
        slow = ratio <= rules.congestion_ratio and z <= -rules.speed_z
        camera.congested = [*camera.congested, int(slow)][-rules.congestion_n :]
        # Only a slow minute is evidence: the minutes after a jam would otherwise refresh the
        # alert with normal speeds while k of n still holds.
        if slow and sum(camera.congested) >= rules.congestion_k:
            run = len(camera.congested) - camera.congested.index(1)
            first = start_ms - (run - 1) * MINUTE_MS
            severity: Severity = "critical" if ratio <= rules.congestion_critical else "warning"
            self._alerts.raise_(
                about,
                Finding(
                    "congestion",
                    start_ms + MINUTE_MS,
                    first,
                    Evidence(speed, usual, ratio, z),
                    severity,
                ),
            )
        self._alerts.settle(about, "congestion", ratio >= rules.congestion_clear, start_ms)

    def _judge_flow(
        self, camera: CameraWatch, factor: float, start_ms: int, records: Records
    ) -> None:
        rules = self.rules
        about = About(camera.camera_id, camera.incidents, records)
        observed, baseline_expected = _trailing_flow(camera, rules.flow_minutes)
        expected = baseline_expected * factor
        if expected < rules.flow_min_expected:
            camera.streaks.clear()
            return
        ratio = observed / expected
        z = (observed - expected) / math.sqrt(expected + (rules.flow_dispersion * expected) ** 2)
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
            self._alerts.raise_(
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
            self._alerts.settle(about, flow_kind, calm, start_ms)

    def _judge_violations(
        self, camera: CameraWatch, baseline: SlotBaseline, start_ms: int, records: Records
    ) -> None:
        rules = self.rules
        about = About(camera.camera_id, camera.incidents, records)
        recent = _healthy(camera.minutes, rules.violation_minutes)
        if not recent:
            self._alerts.settle(about, "violation_spike", False, start_ms)
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
            score = -math.log10(max(tail, 1e-300))
            evidence = Evidence(violations, expected, violations / max(expected, 1e-9), score)
            self._alerts.raise_(
                about, Finding("violation_spike", start_ms + MINUTE_MS, first, evidence, "warning")
            )
        calm = violations <= rules.violation_clear_factor * max(expected, 1.0)
        self._alerts.settle(about, "violation_spike", calm, start_ms)


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


def _judged_by(
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


def _minute_of(
    state: PartitionWindows[FlowCounts],
    camera_id: str,
    start_ms: int,
    baseline: SlotBaseline | None,
) -> Minute:
    expected = 0.0 if baseline is None else baseline.vehicles
    window = state.windows.get(((camera_id,), start_ms))
    if window is None:
        return Minute(start_ms, 0, 0.0, 0, 0, [0] * len(VEHICLE_CLASSES), expected)
    counts = window.acc
    classes = [counts.by_class[c] for c in VEHICLE_CLASSES]
    return Minute(
        start_ms,
        sum(classes),
        counts.speed_sum,
        counts.speed_count,
        counts.violations,
        classes,
        expected,
    )
