"""The anomaly watch through its narrow hook alone (issue 18): what a camera said (`heard`),
stream time moving on (`advance`) and its settled minutes' counts, with no window stage, no
fold and no engine state; its own state saved as JSON and read back, as a checkpoint does."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
import pytest

from city.profile import load_city_profile
from schemas.fast import decode_camera_event
from streams.engine.definition import Records
from streams.engine.window_stage import fold_event
from streams.traffic.anomaly.alerts import ALERTS_TABLE
from streams.traffic.anomaly.state import WatchState
from streams.traffic.anomaly.watch import AnomalyWatch
from streams.traffic.flow import WATCH_KEY, TrafficFlow
from streams.traffic.flow_counts import FlowCounts
from tests.anomaly_city import CAMERAS, MINUTE, T0, baselines, camera_event

PROFILE = load_city_profile()
JAMMED = CAMERAS[0]


def counts(index: int) -> FlowCounts:
    """A minute of about 20 vehicles at about 40 km/h (its usual), or 20 from minute 15; as
    real minutes do, they vary (a camera repeating itself is stuck)."""
    vehicles, speed = 18 + index % 5, (20.0 if index >= 15 else 40.0) + index % 3
    minute = FlowCounts("", speed_sum=vehicles * speed, speed_count=vehicles)
    minute.by_class["motorbike"], minute.by_class["car"] = vehicles - 2, 2
    return minute


def watched(watch: AnomalyWatch, state: WatchState, first: int, minutes: int) -> list[Any]:
    records = Records()
    counted = {(JAMMED, T0 + i * MINUTE): counts(i) for i in range(first + minutes)}
    for index in range(first, first + minutes):
        start = T0 + index * MINUTE
        heartbeat = camera_event(JAMMED, start + 7_000, "status", status="online")
        watch.heard(state, decode_camera_event(orjson.dumps(heartbeat)), records)
        now = start + 59_000  # the stream's time, as its other events moved it
        if watch.due(state, now):
            watch.advance(state, now, lambda camera, at: counted.get((camera, at)), records)
    return records.by_table.get(ALERTS_TABLE, [])


def test_the_rules_judge_through_the_hook_alone_and_resume_from_their_saved_state() -> None:
    watch = AnomalyWatch({JAMMED: "w"}, baselines(), 120_000, PROFILE.tz)
    straight = watch.state_of(None, {}, T0)
    alerts = watched(watch, straight, 0, 30)
    assert {a["kind"] for a in alerts} == {"congestion"}
    assert [a["state"] for a in alerts][:2] == ["open", "updated"]
    assert alerts[0]["ratio"] == pytest.approx(0.5, abs=0.06)

    halfway = watch.state_of(None, {}, T0)
    before = watched(watch, halfway, 0, 16)
    saved = orjson.loads(orjson.dumps(halfway))  # what a checkpoint keeps of it
    after = watched(watch, watch.state_of(saved, {}, T0), 16, 14)
    assert before + after == alerts


def test_a_checkpoint_from_before_the_hook_is_read_into_the_watchs_own_state() -> None:
    flow = TrafficFlow(PROFILE, 120, baselines())
    state, records = flow.new_state(), Records()
    for offset in range(3):
        event = camera_event(CAMERAS[0], T0 + offset * MINUTE, "status", status="online")
        fold_event(flow, state, offset, orjson.dumps(event), records)
    watch = state.keyed[WATCH_KEY]
    assert isinstance(watch, WatchState)
    camera = orjson.loads(orjson.dumps(watch.cameras[CAMERAS[0]]))
    # The old layout: the partition's entry with its camera list, one entry per camera.
    partition = {**asdict(watch.partition), "cameras": [CAMERAS[0], CAMERAS[1]]}
    state.keyed = {WATCH_KEY: partition, f"watch:{CAMERAS[0]}": camera}
    event = camera_event(CAMERAS[0], T0 + 3 * MINUTE, "status", status="online")
    fold_event(flow, state, 3, orjson.dumps(event), records)
    assert list(state.keyed) == [WATCH_KEY]
    # The second camera was listed but never saved (that layout saved a camera on its first
    # change): heard anew.
    assert list(state.keyed[WATCH_KEY].cameras) == [CAMERAS[0]]
    assert state.keyed[WATCH_KEY].cameras[CAMERAS[0]].alive_ms == T0 + 3 * MINUTE
    assert state.take_keyed_changes()[1] == [f"watch:{CAMERAS[0]}"]
