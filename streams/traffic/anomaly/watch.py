"""Traffic anomalies: incidents opened, updated and resolved per camera, in event time.

The detector rides on the traffic stream's partitions (camera events are keyed by camera, so
one partition sees all of a camera), through one narrow hook: `heard` (this camera said
something: a new, timely passage or violation, or a status report) and `advance` (stream time
has moved: judge the ticks it makes due, reading each settled camera-minute through a
`MinuteCounts` the stream gives). Its state is its own `WatchState` (state.py), which the
traffic stream checkpoints as one entry of the partition's state (streams/traffic/flow.py);
nothing here knows the engine's windows. Decisions are
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

from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any

from city.clock import MINUTE_MS, aligned_start
from schemas.camera import VEHICLE_CLASSES
from schemas.fast import CameraEvent, Passage, StatusReport, Violation
from streams.engine.definition import Records
from streams.traffic.anomaly.alerts import About, AlertLog, is_open
from streams.traffic.anomaly.baselines import BaselineSource, SlotBaseline
from streams.traffic.anomaly.camera_level import UsualSpeed, judged_by, speed_judged_by
from streams.traffic.anomaly.offline import judge_offline
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
    WatchState,
    legacy_watch,
    watch_from_state,
)
from streams.traffic.flow_counts import FlowCounts

TICK_MS = 10_000
SETTLE_MS = 15_000
# A jump of stream time further than this is judged over its last hour only (a backlog's
# first event, a clock set far ahead): not every tick since the last event.
MAX_CATCH_UP_MS = 3_600_000
HEARTBEATS_KEPT = 3

# A camera that reports itself tampered with is talking, so alive; whether its picture can be
# trusted is the health panel's to show (dashboards/traffic_sql.py), and it makes the camera's
# offline alert critical should it then go dark.
ALIVE_STATUSES = frozenset({"online", "degraded", "tampered"})

# A settled camera-minute as the stream counted it: (camera id, minute start) to its counts,
# None when nothing was counted.
MinuteCounts = Callable[[str, int], FlowCounts | None]


class AnomalyWatch:
    """The detector of one traffic stream: stateless itself, each input partition's state is
    a `WatchState` handed to every call."""

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

    # -- its state ------------------------------------------------------------------------

    def state_of(self, saved: Any, others: Mapping[str, Any], ts_ms: int) -> WatchState:
        """A partition's watch state from its checkpointed entry `saved` (None: a partition
        first heard at `ts_ms`); `others`, the partition's other entries, are read for a
        checkpoint from before `WatchState` (state.legacy_watch)."""
        if saved is None:
            return WatchState(PartitionWatch(aligned_start(ts_ms, TICK_MS) + TICK_MS))
        if "partition" in saved:
            return watch_from_state(saved)
        return legacy_watch(saved, others)

    # -- the hook ---------------------------------------------------------------------------

    def heard(self, watch: WatchState, event: CameraEvent, records: Records) -> None:
        """This camera said something: a new, timely passage or violation (late within grace,
        perhaps, for a minute already judged), or a status report. A sign of life.

        On the hot path: a passage costs a lookup and two comparisons.
        """
        ts = event.ts
        camera = watch.cameras.get(event.camera_id)
        if camera is None:
            camera = watch.cameras[event.camera_id] = CameraWatch(event.camera_id, alive_ms=ts)
        alive = True
        if type(event) is StatusReport:  # not isinstance: see TrafficFlow.fold
            camera.status = event.status
            alive = event.status in ALIVE_STATUSES
            if alive:
                camera.heartbeats = sorted([*camera.heartbeats, ts])[-HEARTBEATS_KEPT:]
        if alive and ts > camera.alive_ms:
            camera.alive_ms = ts
            offline = camera.incidents.get("camera_offline")
            if offline is not None and offline.open:
                # An event a little out of order may predate the opening; never resolve before.
                resolved = max(ts, offline.opened_ms)
                about = About(camera.camera_id, camera.incidents, records)
                self._alerts.clear(about, "camera_offline", resolved)
        judged = camera.minutes and ts < camera.minutes[-1].start_ms + MINUTE_MS
        if judged and type(event) is not StatusReport:
            self._revise(camera, event)

    def due(self, watch: WatchState, now_ms: int) -> bool:
        """Whether stream time `now_ms` makes a tick due."""
        return watch.partition.next_tick_ms + self._settle_ms <= now_ms

    def advance(
        self, watch: WatchState, now_ms: int, counted: MinuteCounts, records: Records
    ) -> None:
        """Stream time is `now_ms`: judge every tick it makes due, each settled camera-minute
        as `counted` gives it."""
        partition = watch.partition
        if now_ms - partition.next_tick_ms > MAX_CATCH_UP_MS:
            partition.next_tick_ms = aligned_start(now_ms - MAX_CATCH_UP_MS, MINUTE_MS)
        while self.due(watch, now_ms):
            self._tick(watch, partition.next_tick_ms, counted, records)
            partition.next_tick_ms += TICK_MS

    def _revise(self, camera: CameraWatch, event: Passage | Violation) -> None:
        """A late event (within grace) of a minute already judged: the minute and the evidence
        of the alerts resting on it brought up to date (revisions.py), written at the next tick."""
        start = aligned_start(event.ts, MINUTE_MS)
        minute = next((m for m in reversed(camera.minutes) if m.start_ms == start), None)
        if minute is not None and minute.healthy:
            revise(self.rules, camera, event, minute)

    # -- ticks ----------------------------------------------------------------------------

    def _tick(self, watch: WatchState, now: int, counted: MinuteCounts, records: Records) -> None:
        cameras = list(watch.cameras.values())
        judge_offline(self._judge, watch, cameras, now, records)
        if now % MINUTE_MS == 0:
            self._judge_minute(watch, cameras, now - MINUTE_MS, counted, records)
        for camera in cameras:
            if any(incident.revised for incident in camera.incidents.values()):
                self._alerts.write_revised(About(camera.camera_id, camera.incidents, records), now)

    def _judge_minute(
        self,
        watch: WatchState,
        cameras: list[CameraWatch],
        start_ms: int,
        counted: MinuteCounts,
        records: Records,
    ) -> None:
        rules = self.rules
        judged: list[tuple[CameraWatch, SlotBaseline | None]] = []
        speeds: dict[str, UsualSpeed | None] = {}
        for camera in cameras:
            slot = self._baselines.at(camera.camera_id, start_ms, self._tz)
            minute = _minute_of(counted(camera.camera_id, start_ms), start_ms, slot)
            camera.minutes = [*camera.minutes, minute][-self._history :]
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
            baseline = judged_by(camera, minute, slot)
            judged.append((camera, baseline))
            speeds[camera.camera_id] = speed_judged_by(camera, minute, slot, baseline)
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


def _minute_of(counts: FlowCounts | None, start_ms: int, baseline: SlotBaseline | None) -> Minute:
    expected = 0.0 if baseline is None else baseline.vehicles
    if counts is None:
        return Minute(start_ms, 0, 0.0, 0, 0, [0] * len(VEHICLE_CLASSES), expected)
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
