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
the flow window's grace) still count in `traffic_flow_1m` and in the evidence of the open alerts
that rest on their minute (revisions.py); they never open, resolve or retract an alert.

Rules (rules.py, one function each; parameters in `Rules`, their reasons in the README's
"Traffic anomalies"):
- camera_offline: no sign of life (a passage, a violation, a heartbeat not `offline`) for
  `offline_after_ms`. A camera that reports offline but keeps counting vehicles is not offline.
  When a large share of a partition's cameras go quiet together, one `site_offline` alert
  stands for them (inhibiting the per-camera ones). A partition-wide alert is that partition's
  finding; the store merges the partitions' findings of one city-wide event into one alert
  (`traffic_alerts_merged`, sinks/clickhouse/migrations.py).
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

from collections.abc import Iterator
from datetime import tzinfo

from city.clock import MINUTE_MS, aligned_start
from schemas.camera import VEHICLE_CLASSES
from schemas.fast import CameraEvent, Passage, StatusReport, Violation
from streams.engine.definition import Records
from streams.engine.windows import PartitionWindows
from streams.traffic.anomaly.alerts import (
    PARTITION_WIDE,
    About,
    AlertLog,
    Evidence,
    Finding,
    is_open,
)
from streams.traffic.anomaly.baselines import BaselineSource, SlotBaseline
from streams.traffic.anomaly.camera_level import (
    UsualSpeed,
    own_baseline,
    own_speed,
    sample_speed,
    tally,
    usual_speed,
)
from streams.traffic.anomaly.revisions import revise
from streams.traffic.anomaly.rules import (
    Judge,
    Rules,
    city_factor,
    judge_city,
    judge_congestion,
    judge_flow,
    judge_silent,
    judge_stuck,
    judge_violations,
)
from streams.traffic.anomaly.state import (
    CameraWatch,
    Minute,
    PartitionWatch,
    camera_from_state,
    partition_from_state,
)
from streams.traffic.flow_counts import FlowCounts

TICK_MS = 10_000
SETTLE_MS = 15_000
# A jump of stream time further than this is judged over its last hour only (a backlog's
# first event, a clock set far ahead): not every tick since the last event.
MAX_CATCH_UP_MS = 3_600_000
HEARTBEATS_KEPT = 3
PARTITION_KEY = "watch"
CAMERA_KEY_PREFIX = "watch:"

# A camera that reports itself tampered with is talking, so alive; whether its picture can be
# trusted is the health panel's to show (dashboards/traffic_sql.py), and it makes the camera's
# offline alert critical should it then go dark.
ALIVE_STATUSES = frozenset({"online", "degraded", "tampered"})


class AnomalyWatch:
    """The detector of one traffic stream: stateless itself, its state is in each partition's
    keyed state (`PARTITION_KEY`, and `CAMERA_KEY_PREFIX` + camera id)."""

    def __init__(
        self,
        ward_of: dict[str, str],
        baselines: BaselineSource,
        grace_ms: int,
        tz: tzinfo,
        rules: Rules | None = None,
    ) -> None:
        self._baselines = baselines
        self._tz = tz
        # A minute is judged from its flow window, so before the window can close.
        self._settle_ms = min(SETTLE_MS, grace_ms)
        self.rules = rules or Rules()
        self._alerts = AlertLog(ward_of, baselines.version_at, self.rules.clear_minutes, tz)
        self._judge = Judge(self.rules, self._alerts)
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
        judged = camera.minutes and ts < camera.minutes[-1].start_ms + MINUTE_MS
        if judged and not isinstance(event, StatusReport):
            self._revise(state, camera, event)
        now = state.stream_time_ms
        if now is not None and watch.next_tick_ms + self._settle_ms <= now:
            self._run_ticks(state, watch, now, records)

    def _revise(
        self, state: PartitionWindows[FlowCounts], camera: CameraWatch, event: Passage | Violation
    ) -> None:
        """A late event (within grace) of a minute already judged: the minute and the evidence
        of the alerts resting on it brought up to date (revisions.py), written at the next tick."""
        start = aligned_start(event.ts, MINUTE_MS)
        minute = next((m for m in reversed(camera.minutes) if m.start_ms == start), None)
        if minute is not None and minute.healthy:
            revise(self.rules, camera, event, minute)
            state.put_keyed(CAMERA_KEY_PREFIX + camera.camera_id, camera)

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
        for camera in cameras:
            if any(incident.revised for incident in camera.incidents.values()):
                self._alerts.write_revised(About(camera.camera_id, camera.incidents, records), now)
                state.put_keyed(CAMERA_KEY_PREFIX + camera.camera_id, camera)

    def _judge_offline(
        self,
        state: PartitionWindows[FlowCounts],
        watch: PartitionWatch,
        cameras: list[CameraWatch],
        now: int,
        records: Records,
    ) -> None:
        rules = self.rules
        partition = About(PARTITION_WIDE, watch.incidents, records, watch.name)
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
        speeds: dict[str, UsualSpeed | None] = {}
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
            baseline = _judged_by(camera, minute, slot)
            judged.append((camera, baseline))
            speeds[camera.camera_id] = _speed_judged_by(camera, minute, slot, baseline)
        factor = city_factor(self._judge, judged)
        judge_city(self._judge, watch, start_ms, factor, records)
        for camera, baseline in judged:
            judge_silent(self._judge, camera, start_ms, records)
            if is_open(camera.incidents, "camera_silent"):
                continue
            judge_stuck(self._judge, camera, baseline, start_ms, records)
            speed = speeds[camera.camera_id]
            if speed is not None:
                judge_congestion(self._judge, camera, speed, start_ms, records)
            if baseline is None:
                continue
            judge_flow(self._judge, camera, factor, start_ms, records)
            judge_violations(self._judge, camera, baseline, start_ms, records)


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


def _speed_judged_by(
    camera: CameraWatch, minute: Minute, slot: SlotBaseline | None, baseline: SlotBaseline | None
) -> UsualSpeed | None:
    """The usual speed a healthy minute is judged by: its baseline's, or on a prior slot whose
    camera has no level yet (cold start), its first minutes' speed over the prior's shape."""
    if baseline is not None and baseline.speed_kmh is not None:
        return usual_speed(baseline)
    if slot is None or slot.learned:
        return None
    camera.speed_ratios = sample_speed(camera.speed_ratios, minute, slot)
    return own_speed(camera.speed_ratios, slot)


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
