"""Traffic flow: camera events into 1-minute flow windows per camera, plus violations and health.

Contract: section 4 (camera.events), section 5 (windows), section 7 (`traffic_flow_1m`,
`traffic_violations`, `traffic_alerts`). Status reports are not windowed: they land in
`camera_status`. Every new, timely event is also told to the anomaly watch
(streams/traffic/anomaly/watch.py), which judges each settled camera-minute as these windows
counted it; its state is one entry of the partition's keyed state, `WATCH_KEY`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from city import topics
from city.clock import MINUTE_MS, aligned_start, local_time
from city.profile import CityProfile
from schemas.exceptions import InvalidEvent
from schemas.fast import CameraEvent, StatusReport, Violation, decode_camera_event
from streams.engine.definition import Assignment, Records, Row
from streams.engine.windows import Group, PartitionWindows, Window, WindowKey
from streams.traffic.anomaly.alerts import ALERTS_TABLE
from streams.traffic.anomaly.baselines import BaselineSource
from streams.traffic.anomaly.state import LEGACY_CAMERA_PREFIX, WatchState
from streams.traffic.anomaly.watch import AnomalyWatch
from streams.traffic.flow_counts import FlowCounts

log = logging.getLogger(__name__)

FLOW_TABLE = "traffic_flow_1m"
VIOLATIONS_TABLE = "traffic_violations"
STATUS_TABLE = "camera_status"
WATCH_KEY = "watch"


class TrafficFlow:
    name = "traffic"
    source_topic = topics.CAMERA_EVENTS
    output_topic = topics.TRAFFIC_FLOW_1M
    output_key = "camera_id"
    window_table = FLOW_TABLE
    event_time_field = "ts"
    rekeyed = False
    key_field: str | None = "camera_id"
    record_topics: Mapping[str, tuple[str, str]] = MappingProxyType(
        {ALERTS_TABLE: (topics.TRAFFIC_ALERTS, "alert_id")}
    )

    def __init__(self, profile: CityProfile, grace_s: int, baselines: BaselineSource) -> None:
        self._ward_of = {camera.camera_id: camera.ward for camera in profile.cameras}
        self._pcu: dict[str, float] = {c: factor for c, factor in profile.pcu.items()}
        self._grace_ms = grace_s * 1000
        self._tz = profile.tz
        self.anomalies = AnomalyWatch(self._ward_of, baselines, self._grace_ms, profile.tz)

    def new_state(self) -> PartitionWindows[FlowCounts]:
        # A window opens for an event decode has checked: its camera is in the profile.
        return PartitionWindows(self._grace_ms, lambda group: FlowCounts(self._ward_of[group[0]]))

    def decode(self, raw: bytes | None) -> CameraEvent:
        event = decode_camera_event(raw)
        if event.camera_id not in self._ward_of:
            raise InvalidEvent("camera_id: not a camera of the city profile")
        return event

    def assign(self, event: CameraEvent) -> Assignment | None:
        if type(event) is StatusReport:
            return None  # health is a record, not an aggregate
        start = aligned_start(event.ts, MINUTE_MS)
        return Assignment(
            event.event_id, (event.camera_id,), start, start + MINUTE_MS, event.ts, event.camera_id
        )

    def fold(
        self,
        state: PartitionWindows[FlowCounts],
        event: CameraEvent,
        window: Window[FlowCounts] | None,
        records: Records,
    ) -> None:
        # `type(event) is`, not isinstance: the events are msgspec structs, whose metaclass
        # sends isinstance through `__instancecheck__`, ~0.1 µs a test where a passage met
        # six of them (issue 20). The three event classes have no subclasses.
        if type(event) is StatusReport:
            # Repeats collapse on (camera_id, ts, event_id).
            records.add(
                STATUS_TABLE,
                {
                    "camera_id": event.camera_id,
                    "ward": self._ward_of[event.camera_id],
                    "ts": local_time(event.ts, self._tz),
                    "status": event.status,
                    "event_id": event.event_id,
                },
            )
            self.tell_watch(state, event, records)
            return
        if type(event) is Violation:
            # A violation is recorded even when late; only the flow window drops it.
            records.add(
                VIOLATIONS_TABLE,
                {
                    "event_id": event.event_id,
                    "camera_id": event.camera_id,
                    "ward": self._ward_of[event.camera_id],
                    "ts": local_time(event.ts, self._tz),
                    "violation_type": event.violation_type,
                    "vehicle_class": event.vehicle_class,
                    "plate": event.plate,
                    "speed_kmh": event.speed_kmh,
                },
            )
        if window is None:
            return
        self.tell_watch(state, event, records)
        counts = window.acc
        if type(event) is Violation:
            counts.violations += 1
            return
        counts.by_class[event.vehicle_class] += 1
        if event.speed_kmh is not None:
            counts.speed_sum += event.speed_kmh
            counts.speed_count += 1

    def tell_watch(
        self, state: PartitionWindows[FlowCounts], event: CameraEvent, records: Records
    ) -> None:
        """The anomaly watch's hook: this camera said something, then the ticks that stream
        time makes due, each settled camera-minute read from its flow window."""
        watch = state.keyed.get(WATCH_KEY)
        if type(watch) is not WatchState:
            watch = self.anomalies.state_of(watch, state.keyed, event.ts)
            for key in [k for k in state.keyed if k.startswith(LEGACY_CAMERA_PREFIX)]:
                state.drop_keyed(key)
            state.put_keyed(WATCH_KEY, watch)
        elif WATCH_KEY not in state.keyed_dirty:
            # Marked changed once between two checkpoints, and changed in place until the
            # next: not a call per event (issue 20).
            state.put_keyed(WATCH_KEY, watch)
        self.anomalies.heard(watch, event, records)
        now = state.stream_time_ms
        if now is not None and self.anomalies.due(watch, now):
            self.anomalies.advance(watch, now, partial(_counted, state.windows), records)

    def window_row(self, window: Window[FlowCounts], final: bool) -> Row:
        counts = window.acc
        by_class = counts.by_class
        return {
            "camera_id": window.group[0],
            "ward": counts.ward,
            "window_start": local_time(window.start_ms, self._tz),
            "vehicles": sum(by_class.values()),
            **by_class,
            # From counts, not a running float sum, so a replay gives the same number.
            "pcu": round(sum(n * self._pcu[c] for c, n in by_class.items()), 6),
            "avg_speed_kmh": counts.speed_sum / counts.speed_count if counts.speed_count else None,
            "violations": counts.violations,
            "final": int(final),
        }

    def acc_to_state(self, acc: FlowCounts) -> dict[str, Any]:
        return acc.to_state()

    def acc_from_state(self, group: Group, state: dict[str, Any]) -> FlowCounts:
        if "ward" not in state:
            # Saved before windows kept their ward: the profile's, or none when the camera has
            # left the profile since; the window is still finalised, not lost.
            ward = self._ward_of.get(group[0])
            if ward is None:
                log.warning("window of a camera no longer in the profile camera_id=%s", group[0])
            state = {**state, "ward": ward or ""}
        return FlowCounts(**state)


def _counted(
    windows: Mapping[WindowKey, Window[FlowCounts]], camera_id: str, start_ms: int
) -> FlowCounts | None:
    window = windows.get(((camera_id,), start_ms))
    return None if window is None else window.acc
