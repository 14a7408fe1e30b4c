"""Traffic anomalies: incidents opened, updated and resolved per camera, in event time.

The detector rides on the traffic stream's partitions (camera events are keyed by camera, so
one partition sees all of a camera): `TrafficFlow.fold` shows it every new event, and it keeps
its own state in the partition's keyed state, checkpointed with the windows. Decisions are
taken on ticks of the partition's stream time, every `TICK_MS`, once `SETTLE_MS` more of
stream time has passed (so events a little out of order are in): only the order of events in a
partition matters, never the wall clock or where a checkpoint fell, so replaying a topic range
reproduces the same alerts, ids and versions. A pipeline that falls behind does not advance
stream time, and so raises nothing; a dead pipeline is the pipeline-health rule's job.

Each minute of each camera is judged once, against its baseline (streams/baselines.py), from
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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Literal

from city.clock import MINUTE_MS, aligned_start, local_time
from schemas.camera import VEHICLE_CLASSES
from schemas.fast import CameraEvent, StatusReport
from streams.baselines import Baselines, SlotBaseline
from streams.definition import Records
from streams.engine.windows import PartitionWindows
from streams.flow_counts import FlowCounts

ALERTS_TABLE = "traffic_alerts"
RULES_VERSION = 1
TICK_MS = 10_000
SETTLE_MS = 15_000
# A jump of stream time further than this is judged at its end only (a backlog's first event,
# a clock set far ahead): minutes nobody saw are not replayed tick by tick.
MAX_CATCH_UP_MS = 3_600_000
HEARTBEATS_KEPT = 3
PARTITION_KEY = "watch"
CAMERA_KEY_PREFIX = "watch:"
# An alert that re-triggers this soon after resolving reopens instead of starting anew.
REOPEN_WITHIN_MS = 15 * MINUTE_MS
# While open, an alert is rewritten with fresh evidence at most this often (and on a change of
# severity), so the table shows the current picture without a row per minute.
REFRESH_MS = 5 * MINUTE_MS
# Flapping as Naemon judges it: state changes within the last 21 checks (minutes here).
FLAP_WINDOW_MS = 21 * MINUTE_MS
FLAP_TRANSITIONS = 4
KEEP_FIRING_MS = 15 * MINUTE_MS

Kind = Literal[
    "camera_offline",
    "camera_silent",
    "camera_stuck",
    "congestion",
    "flow_drop",
    "flow_surge",
    "violation_spike",
    "site_offline",
    "citywide_shift",
]
Severity = Literal["info", "warning", "critical"]
ALIVE_STATUSES = frozenset({"online", "degraded"})
PARTITION_WIDE = "*"


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


@dataclass
class Minute:
    """One camera-minute as the detector judged it."""

    start_ms: int
    vehicles: int
    speed_sum: float
    speed_n: int
    violations: int
    classes: list[int]
    expected: float  # the baseline's vehicles, 0 without one
    # False when the camera was dark (no vehicles and no heartbeat), offline or silent: the
    # minute is then no evidence of its traffic, and the flow rules pass over it.
    healthy: bool = True

    @property
    def speed(self) -> float | None:
        return self.speed_sum / self.speed_n if self.speed_n else None


@dataclass
class Evidence:
    observed: float
    expected: float
    ratio: float
    score: float


@dataclass
class Incident:
    """One alert's life: opened, updated, resolved, perhaps reopened (same id)."""

    alert_id: str
    kind: str
    first_ms: int  # the first anomalous minute, which names the alert
    opened_ms: int
    severity: str
    evidence: Evidence
    status: str = "open"
    resolved_ms: int | None = None
    written_ms: int = 0
    writes: int = 0
    reopens: int = 0
    transitions: list[int] = field(default_factory=list)
    clear_run: int = 0

    @property
    def open(self) -> bool:
        return self.status == "open"

    def flapping(self, now_ms: int) -> bool:
        return len(_recent(self.transitions, now_ms)) >= FLAP_TRANSITIONS


def _recent(transitions: list[int], now_ms: int) -> list[int]:
    return [t for t in transitions if now_ms - t < FLAP_WINDOW_MS]


@dataclass
class CameraWatch:
    camera_id: str
    alive_ms: int
    status: str = "online"
    heartbeats: list[int] = field(default_factory=list)  # the last few online/degraded ones
    minutes: list[Minute] = field(default_factory=list)
    zero_minutes: int = 0
    zero_expected: float = 0.0
    streaks: dict[str, int] = field(default_factory=dict)
    congested: list[int] = field(default_factory=list)  # 1/0 per recent minute with speeds
    incidents: dict[str, Incident] = field(default_factory=dict)


@dataclass
class PartitionWatch:
    next_tick_ms: int
    cameras: list[str] = field(default_factory=list)
    city_streak: int = 0
    city_clear_run: int = 0
    incidents: dict[str, Incident] = field(default_factory=dict)


def alert_id(kind: str, camera_id: str, first_ms: int) -> str:
    """A function of the alert's kind, camera and first anomalous minute (contract section 7)."""
    return hashlib.sha1(f"{kind}|{camera_id}|{first_ms}".encode()).hexdigest()[:20]


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = (
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    )  # fmt: skip
    return min(sum(math.exp(t) for t in terms), 1.0)


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean), summed from k up so that tiny tails stay exact."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    total, i = 0.0, k
    term = math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
    while term > total * 1e-12 and i < k + 10_000:
        total += term
        i += 1
        term *= mean / i
    return min(total, 1.0)


class AnomalyWatch:
    """The detector of one traffic stream: stateless itself, its state is in each partition's
    keyed state (`PARTITION_KEY`, and `CAMERA_KEY_PREFIX` + camera id)."""

    def __init__(
        self,
        ward_of: dict[str, str],
        baselines: Baselines,
        grace_ms: int,
        rules: Rules | None = None,
    ) -> None:
        self._ward_of = ward_of
        self._baselines = baselines
        # A minute is judged from its flow window, so before the window can close.
        self._settle_ms = min(SETTLE_MS, grace_ms)
        self.rules = rules or Rules()
        # The minutes a camera keeps: the longest trailing span any rule looks at.
        self._history = max(
            self.rules.violation_minutes, self.rules.repeat_minutes,
            self.rules.flow_minutes, self.rules.stuck_minutes, self.rules.congestion_n,
        )  # fmt: skip

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
            if _open(camera.incidents, "camera_offline"):
                self._clear(camera.incidents, camera.camera_id, "camera_offline", ts, records)
        now = state.stream_time_ms
        if now is not None and watch.next_tick_ms + self._settle_ms <= now:
            self._run_ticks(state, watch, now, records)

    def _partition(self, state: PartitionWindows[FlowCounts], ts_ms: int) -> PartitionWatch:
        found = state.keyed.get(PARTITION_KEY)
        if type(found) is PartitionWatch:
            return found
        watch = (
            _partition_from_state(found)
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
            camera = _camera_from_state(found)
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
        quiet = [c for c in cameras if now - c.alive_ms >= rules.offline_after_ms]
        site = len(quiet) >= rules.site_min_cameras and len(quiet) >= rules.site_share * len(
            cameras
        )
        evidence = Evidence(len(quiet), len(cameras), len(quiet) / max(len(cameras), 1), 0.0)
        if site:
            first = min(c.alive_ms for c in quiet) + rules.offline_after_ms
            self._raise(watch.incidents, PARTITION_WIDE, "site_offline", now, first,
                        evidence, "critical", records)  # fmt: skip
        else:
            self._clear(watch.incidents, PARTITION_WIDE, "site_offline", now, records, at_once=True)
        quiet_ids = {camera.camera_id for camera in quiet}
        for camera in cameras:
            if camera.camera_id not in quiet_ids:
                if _open(camera.incidents, "camera_offline"):  # held open while flapping
                    self._clear(camera.incidents, camera.camera_id, "camera_offline", now, records)
                continue
            if site:
                continue  # one site alert stands for them all
            silent_s = (now - camera.alive_ms) / 1000
            limit_s = rules.offline_after_ms / 1000
            self._raise(
                camera.incidents, camera.camera_id, "camera_offline", now,
                camera.alive_ms + rules.offline_after_ms,
                Evidence(silent_s, limit_s, silent_s / limit_s, silent_s / limit_s),
                "critical" if camera.status == "tampered" else "warning",
                records,
            )  # fmt: skip
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
            baseline = self._baselines.at(camera.camera_id, start_ms)
            minute = _minute_of(state, camera.camera_id, start_ms, baseline)
            camera.minutes = [*camera.minutes, minute][-self._history :]
            state.put_keyed(CAMERA_KEY_PREFIX + camera.camera_id, camera)
            end = start_ms + MINUTE_MS
            beating = any(end - rules.offline_after_ms <= h < end for h in camera.heartbeats)
            offline = end - camera.alive_ms >= rules.offline_after_ms
            if (
                offline
                or _open(camera.incidents, "camera_offline")
                or not (minute.vehicles or beating)
            ):
                minute.healthy = False  # dark: no evidence of anything but that
                camera.zero_minutes, camera.zero_expected = 0, 0.0
                continue
            judged.append((camera, baseline))
        factor = self._city_factor(judged)
        self._judge_city(watch, start_ms, factor, len(judged), records)
        for camera, baseline in judged:
            self._judge_silent(camera, baseline, start_ms, records)
            if _open(camera.incidents, "camera_silent"):
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
        self, watch: PartitionWatch, start_ms: int, factor: float, cameras: int, records: Records
    ) -> None:
        rules = self.rules
        shifted = factor <= rules.citywide_low or factor >= rules.citywide_high
        watch.city_streak = watch.city_streak + 1 if shifted else 0
        evidence = Evidence(factor, 1.0, factor, factor)
        if watch.city_streak >= rules.citywide_minutes:
            first = start_ms - (watch.city_streak - 1) * MINUTE_MS
            self._raise(watch.incidents, PARTITION_WIDE, "citywide_shift", start_ms + MINUTE_MS,
                        first, evidence, "info", records)  # fmt: skip
        calm = rules.citywide_clear_low <= factor <= rules.citywide_clear_high
        self._settle(watch.incidents, PARTITION_WIDE, "citywide_shift", calm, start_ms, records)

    def _judge_silent(
        self, camera: CameraWatch, baseline: SlotBaseline | None, start_ms: int, records: Records
    ) -> None:
        rules, minute = self.rules, camera.minutes[-1]
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
            self._raise(camera.incidents, camera.camera_id, "camera_silent",
                        start_ms + MINUTE_MS, first, evidence, "warning", records)  # fmt: skip
        calm = minute.vehicles > 0
        self._settle(camera.incidents, camera.camera_id, "camera_silent", calm, start_ms, records,
                     clear_minutes=1)  # fmt: skip

    def _judge_stuck(
        self, camera: CameraWatch, baseline: SlotBaseline | None, start_ms: int, records: Records
    ) -> None:
        rules, minutes = self.rules, camera.minutes
        evidence: Evidence | None = None
        recent = _healthy(minutes, rules.stuck_minutes)
        speeds = [m.speed for m in recent if m.speed_n >= rules.stuck_min_speeds]
        if recent and len(speeds) == len(recent):
            known = [s for s in speeds if s is not None]
            if max(known) - min(known) < 0.05:
                evidence = Evidence(known[-1], known[-1], 1.0, float(len(known)))
        counts = [m.vehicles for m in _healthy(minutes, rules.repeat_minutes)]
        if counts and min(counts) >= rules.repeat_min_vehicles and len(set(counts)) == 1:
            evidence = Evidence(counts[-1], counts[-1], 1.0, float(len(counts)))
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
        if evidence is not None:
            first = start_ms - (rules.stuck_minutes - 1) * MINUTE_MS
            self._raise(camera.incidents, camera.camera_id, "camera_stuck",
                        start_ms + MINUTE_MS, first, evidence, "warning", records)  # fmt: skip
        self._settle(camera.incidents, camera.camera_id, "camera_stuck", evidence is None,
                     start_ms, records)  # fmt: skip

    def _judge_congestion(
        self, camera: CameraWatch, baseline: SlotBaseline, start_ms: int, records: Records
    ) -> None:
        rules, minute = self.rules, camera.minutes[-1]
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
            self._raise(camera.incidents, camera.camera_id, "congestion", start_ms + MINUTE_MS,
                        first, Evidence(speed, usual, ratio, z), severity, records)  # fmt: skip
        self._settle(camera.incidents, camera.camera_id, "congestion",
                     ratio >= rules.congestion_clear, start_ms, records)  # fmt: skip

    def _judge_flow(
        self, camera: CameraWatch, factor: float, start_ms: int, records: Records
    ) -> None:
        rules = self.rules
        observed, baseline_expected = _trailing_flow(camera, rules.flow_minutes)
        expected = baseline_expected * factor
        if expected < rules.flow_min_expected:
            camera.streaks.pop("flow", None)
            return
        ratio = observed / expected
        z = (observed - expected) / math.sqrt(expected + (rules.flow_dispersion * expected) ** 2)
        kind: Kind | None = None
        if ratio <= rules.flow_drop and z <= -rules.flow_z:
            kind = "flow_drop"
        elif ratio >= rules.flow_surge and z >= rules.flow_z:
            kind = "flow_surge"
        streak = camera.streaks.get(kind or "", 0) + 1 if kind else 0
        camera.streaks = {kind: streak} if kind else {}
        if kind is not None and streak >= rules.flow_persist:
            first = start_ms - (streak - 1) * MINUTE_MS
            self._raise(camera.incidents, camera.camera_id, kind, start_ms + MINUTE_MS, first,
                        Evidence(observed, expected, ratio, z), "warning", records)  # fmt: skip
        calm = rules.flow_clear_low <= ratio <= rules.flow_clear_high
        for flow_kind in ("flow_drop", "flow_surge"):
            self._settle(camera.incidents, camera.camera_id, flow_kind, calm, start_ms, records)

    def _judge_violations(
        self, camera: CameraWatch, baseline: SlotBaseline, start_ms: int, records: Records
    ) -> None:
        rules = self.rules
        recent = _healthy(camera.minutes, rules.violation_minutes)
        if not recent:
            self._settle(camera.incidents, camera.camera_id, "violation_spike", False, start_ms,
                         records)  # fmt: skip
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
            self._raise(camera.incidents, camera.camera_id, "violation_spike",
                        start_ms + MINUTE_MS, first, evidence, "warning", records)  # fmt: skip
        calm = violations <= rules.violation_clear_factor * max(expected, 1.0)
        self._settle(camera.incidents, camera.camera_id, "violation_spike", calm, start_ms,
                     records)  # fmt: skip

    # -- lifecycle ------------------------------------------------------------------------

    def _raise(
        self,
        incidents: dict[str, Incident],
        camera_id: str,
        kind: Kind,
        now: int,
        first_ms: int,
        evidence: Evidence,
        severity: Severity,
        records: Records,
    ) -> None:
        """The rule holds at `now`: open the alert, reopen a recent one, or refresh an open one."""
        incident = incidents.get(kind)
        first_ms = aligned_start(first_ms, MINUTE_MS)
        if incident is not None and incident.open:
            incident.clear_run = 0
            changed = severity != incident.severity
            incident.evidence, incident.severity = evidence, severity
            if changed or now - incident.written_ms >= REFRESH_MS:
                self._write(incident, camera_id, "updated", now, records)
            return
        if incident is not None and now - (incident.resolved_ms or now) <= REOPEN_WITHIN_MS:
            incident.status, incident.resolved_ms = "open", None
            incident.reopens += 1
            incident.transitions = _recent([*incident.transitions, now], now)
        else:
            incident = Incident(
                alert_id(kind, camera_id, first_ms),
                kind,
                first_ms,
                now,
                severity,
                evidence,
                transitions=[now],
            )
            incidents[kind] = incident
        incident.evidence, incident.severity, incident.clear_run = evidence, severity, 0
        self._write(incident, camera_id, "open", now, records)

    def _settle(
        self,
        incidents: dict[str, Incident],
        camera_id: str,
        kind: str,
        calm: bool,
        start_ms: int,
        records: Records,
        clear_minutes: int | None = None,
    ) -> None:
        """One more minute of evidence for an open alert: resolve it after enough calm ones."""
        incident = incidents.get(kind)
        if incident is None or not incident.open:
            self._forget(incidents, kind, start_ms)
            return
        incident.clear_run = incident.clear_run + 1 if calm else 0
        if incident.clear_run >= (clear_minutes or self.rules.clear_minutes):
            self._clear(incidents, camera_id, kind, start_ms + MINUTE_MS, records)

    def _clear(
        self,
        incidents: dict[str, Incident],
        camera_id: str,
        kind: str,
        now: int,
        records: Records,
        *,
        at_once: bool = False,
    ) -> None:
        incident = incidents.get(kind)
        if incident is None or not incident.open:
            self._forget(incidents, kind, now)
            return
        if (
            not at_once
            and incident.flapping(now)
            and now - incident.transitions[-1] < KEEP_FIRING_MS
        ):
            return  # a flapping alert stays open until it has been calm for a while
        self._resolve(camera_id, incident, now, records)

    def _resolve(self, camera_id: str, incident: Incident, now: int, records: Records) -> None:
        incident.status, incident.resolved_ms, incident.clear_run = "resolved", now, 0
        incident.transitions = _recent([*incident.transitions, now], now)
        self._write(incident, camera_id, "resolved", now, records)

    def _forget(self, incidents: dict[str, Incident], kind: str, now: int) -> None:
        incident = incidents.get(kind)
        if incident is not None and now - (incident.resolved_ms or now) > REOPEN_WITHIN_MS:
            del incidents[kind]

    def _write(
        self, incident: Incident, camera_id: str, state: str, now: int, records: Records
    ) -> None:
        incident.writes += 1
        incident.written_ms = now
        evidence = incident.evidence
        resolved = incident.resolved_ms
        records.add(
            ALERTS_TABLE,
            {
                "alert_id": incident.alert_id,
                "alert_key": f"{incident.kind}|{camera_id}",
                "camera_id": camera_id,
                "ward": self._ward_of.get(camera_id, PARTITION_WIDE),
                "kind": incident.kind,
                "severity": incident.severity,
                "state": state,
                "status": incident.status,
                "first_anomalous_at": local_time(incident.first_ms),
                "opened_at": local_time(incident.opened_ms),
                "updated_at": local_time(now),
                "resolved_at": None if resolved is None else local_time(resolved),
                "observed": float(evidence.observed),
                "expected": float(evidence.expected),
                "ratio": float(evidence.ratio),
                "score": float(evidence.score),
                "reopens": incident.reopens,
                "flapping": int(incident.flapping(now)),
                "rule_version": RULES_VERSION,
                "baseline_version": self._baselines.version,
                "version": incident.writes,
            },
        )


def _open(incidents: dict[str, Incident], kind: str) -> bool:
    incident = incidents.get(kind)
    return incident is not None and incident.open


def _healthy(minutes: list[Minute], count: int) -> list[Minute]:
    """The last `count` minutes when all of them are healthy evidence, else none."""
    recent = minutes[-count:]
    return recent if len(recent) == count and all(m.healthy for m in recent) else []


def _trailing_flow(camera: CameraWatch, minutes: int) -> tuple[float, float]:
    """(vehicles, baseline vehicles) over the camera's last `minutes` healthy minutes."""
    recent = _healthy(camera.minutes, minutes)
    return float(sum(m.vehicles for m in recent)), sum(m.expected for m in recent)


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
        start_ms, sum(classes), counts.speed_sum, counts.speed_count, counts.violations,
        classes, expected,
    )  # fmt: skip


def _incident_from_state(state: dict[str, Any]) -> Incident:
    return Incident(**{**state, "evidence": Evidence(**state["evidence"])})


def _incidents(state: dict[str, Any]) -> dict[str, Incident]:
    return {kind: _incident_from_state(value) for kind, value in state.items()}


def _camera_from_state(state: dict[str, Any]) -> CameraWatch:
    return CameraWatch(
        **{
            **state,
            "minutes": [Minute(**m) for m in state["minutes"]],
            "incidents": _incidents(state["incidents"]),
        }
    )


def _partition_from_state(state: dict[str, Any]) -> PartitionWatch:
    return PartitionWatch(**{**state, "incidents": _incidents(state["incidents"])})
