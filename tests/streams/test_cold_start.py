"""Issue 18: the detector on a city its priors do not describe. The priors alone never raise
a warning; a camera's level is learned from what it shows (camera_level.py), and the rules that
need no baseline (offline, silent) work from the first minutes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import cache
from typing import Any

import orjson
import pytest

from city.profile import load_city_profile
from simulator.baseline_priors import prior_baselines
from streams.engine.definition import Records
from streams.engine.window_stage import fold_event
from streams.traffic.anomaly.alerts import ALERTS_TABLE, AlertLog
from streams.traffic.anomaly.baselines import Baselines
from streams.traffic.anomaly.rules import Judge, Rules, judge_flow
from streams.traffic.anomaly.state import Basis, CameraWatch, Minute
from streams.traffic.flow import TrafficFlow
from tests.anomaly_city import CAMERAS, MINUTE, T0, USUAL, baselines, traffic

PROFILE = load_city_profile()
SATURDAY_8AM = 1_726_880_400_000  # 2024-09-21T08:00:00+07:00


@cache
def priors() -> Baselines:
    return Baselines(prior_baselines(PROFILE), version=1)


def alerts(baselines: Baselines, events: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alert writes of the traffic stream's fold path, windows closed as checkpoints do."""
    flow = TrafficFlow(PROFILE, 120, baselines)
    state, records = flow.new_state(), Records()
    for offset, event in enumerate(events):
        fold_event(flow, state, offset, orjson.dumps(event), records)
        if offset % 2000 == 0:
            state.take_changes()
    return records.by_table.get(ALERTS_TABLE, [])


def test_a_new_city_at_levels_unlike_the_priors_raises_only_its_real_incident() -> None:
    # The new user: 24 cameras at 24-54 passages a minute on a Saturday morning, a
    # fresh store with the priors only (13 of them had flow alerts within 6 minutes).
    cameras = [camera.camera_id for camera in PROFILE.cameras[:24]]
    levels = {camera: random.Random(camera).uniform(24, 54) for camera in cameras}

    def rate(camera: str, index: int) -> float:
        dark = camera == cameras[5] and 20 <= index < 30
        return 0 if dark else levels[camera]

    written = alerts(priors(), traffic(cameras, rate, SATURDAY_8AM, 40))
    opened = [(a["kind"], a["camera_id"]) for a in written if a["state"] == "open"]
    assert opened == [("camera_offline", cameras[5])]


def test_a_jam_on_a_fresh_store_is_judged_against_the_cameras_first_minutes() -> None:
    # The demo's: VT-CAM-099 on the priors alone, its speeds halved from its 15th minute.
    jammed, others = "VT-CAM-099", [camera.camera_id for camera in PROFILE.cameras[:5]]

    def slowdown(camera: str, index: int) -> float:
        return 0.5 if camera == jammed and 15 <= index < 35 else 1.0

    written = alerts(priors(), traffic([jammed, *others], lambda _c, _i: 30.0, T0, 40, slowdown))
    opened = [a for a in written if a["state"] == "open"]
    assert [(a["kind"], a["camera_id"]) for a in opened] == [("congestion", jammed)]
    assert opened[0]["opened_at"].timestamp() * 1000 <= T0 + 20 * MINUTE
    assert opened[0]["ratio"] == pytest.approx(0.5, abs=0.08)


def test_a_camera_at_three_times_its_prior_is_learned_not_alarmed_for_two_days() -> None:
    prior = Baselines(baselines(USUAL.__class__(**{**_fields(USUAL), "vehicles": 6.0,
                                                    "learned": False})).slots, 7)  # fmt: skip
    busy, days = CAMERAS[0], 2 * 24 * 60
    drop_at = days - 60  # its last hour: a real drop to a fifth of what it has shown

    def rate(camera: str, index: int) -> float:
        if camera != busy:
            return 6.0
        return 3.6 if index >= drop_at else 18.0

    written = alerts(prior, traffic(CAMERAS, rate, T0, days))
    opened = [a for a in written if a["state"] == "open"]
    warnings = [a for a in opened if a["kind"] != "flow_drop" or a["first_anomalous_at"]
                .timestamp() * 1000 < T0 + drop_at * MINUTE]  # fmt: skip
    assert len(warnings) <= 2
    last = {a["alert_id"]: a for a in written}
    assert all(last[a["alert_id"]]["status"] == "resolved" for a in warnings)
    # The drop is judged against the level learned (about 3x the prior's 30 in five minutes,
    # times the city factor), not the prior.
    drops = [a for a in opened if a["kind"] == "flow_drop" and a["camera_id"] == busy]
    assert drops and drops[0]["expected"] > 2.5 * 5 * 6.0


def _fields(baseline: Any) -> dict[str, Any]:
    return {name: getattr(baseline, name) for name in baseline.__slots__}


@pytest.mark.parametrize(("basis", "opened"), [("learned", ["flow_drop"]), ("own", [])])
def test_a_level_not_yet_sure_of_widens_the_flow_bounds(basis: Basis, opened: list[str]) -> None:
    # The rule alone, without the window stage: 5 minutes at 0.45 of what was expected, twice.
    rules = Rules()
    judge = Judge(rules, AlertLog({}, lambda _: 7, rules.clear_minutes, PROFILE.tz))
    camera, records = CameraWatch(CAMERAS[0], alive_ms=T0), Records()
    for index in range(rules.flow_minutes + 1):
        start = T0 + index * MINUTE
        minute = Minute(start, 45, 0.0, 0, 0, [45, 0, 0, 0, 0, 0], 100.0, basis=basis)
        camera.minutes = [*camera.minutes, minute][-rules.flow_minutes :]
        judge_flow(judge, camera, 1.0, start, records)
    kinds = [a["kind"] for a in records.by_table.get(ALERTS_TABLE, []) if a["state"] == "open"]
    assert kinds == opened
