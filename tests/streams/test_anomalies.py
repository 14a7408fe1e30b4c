"""The anomaly rules and the alert lifecycle, driven through the traffic stream's fold path
by the small city of tests/anomaly_city.py. The checkpoint's closing of windows is played
every `cut_every` events, as the engine does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pytest

from city.profile import load_city_profile
from streams.engine.definition import Records
from streams.engine.window_stage import fold_event
from streams.traffic.anomaly.alerts import ALERTS_TABLE
from streams.traffic.anomaly.baselines import Baselines, SlotBaseline
from streams.traffic.anomaly.tail_tests import poisson_tail
from streams.traffic.anomaly.watch import MAX_CATCH_UP_MS
from streams.traffic.flow import TrafficFlow
from tests.anomaly_city import (
    CAMERAS,
    MINUTE,
    T0,
    USUAL,
    Minute,
    Plan,
    baselines,
    camera_event,
    during,
    events,
    usual,
)


@dataclass
class City:
    baselines: Baselines = field(default_factory=baselines)
    cut_every: int = 500
    records: Records = field(default_factory=Records)
    saved: dict[str, Any] = field(default_factory=dict)  # the keyed state checkpoints wrote

    def __post_init__(self) -> None:
        self.flow = TrafficFlow(load_city_profile(), 120, self.baselines)
        self.state = self.flow.new_state()
        self.offset = 0

    def run(self, plan: Plan, minutes: int, first_minute: int = 0) -> list[dict[str, Any]]:
        for event in events(plan, first_minute, minutes):
            fold_event(self.flow, self.state, self.offset, orjson.dumps(event), self.records)
            self.offset += 1
            if self.offset % self.cut_every == 0:
                self.cut()
        return self.alerts()

    def cut(self) -> None:
        """What a checkpoint does to the state, and what it saves of the keyed part: only the
        entries marked changed since the last one, as JSON."""
        self.state.take_changes()
        changed, dropped = self.state.take_keyed_changes()
        self.saved.update({key: orjson.loads(orjson.dumps(v)) for key, v in changed.items()})
        for key in dropped:
            self.saved.pop(key, None)

    def alerts(self) -> list[dict[str, Any]]:
        return self.records.by_table.get(ALERTS_TABLE, [])

    def opened(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a["state"] == "open" and kind in (None, a["kind"])]


def minutes_after(alert: dict[str, Any], minute: int, at: str = "opened_at") -> float:
    """Minutes from the start of `minute` to the alert's `at` time (event time)."""
    moment: datetime = alert[at]
    return (moment.timestamp() * 1000 - (T0 + minute * MINUTE)) / MINUTE


# -- quiet days -------------------------------------------------------------------------------


def test_usual_traffic_raises_nothing() -> None:
    city = City()
    assert city.run(usual, 90) == []


def test_a_camera_that_reports_offline_but_keeps_counting_is_not_offline() -> None:
    city = City()
    assert city.run(during(CAMERAS[:1], 10, 30, Minute(heartbeat="offline")), 40) == []


def test_a_quiet_camera_that_reports_itself_tampered_is_not_offline() -> None:
    # Real cameras say `tampered` now and then (0.1% of heartbeats here) and keep working: at a
    # camera passing nobody, the report alone once opened a critical camera_offline.
    night = SlotBaseline(0.4, 0.5, 30.0, 3.0, 0.02, USUAL.class_share)
    city = City(baselines=baselines(night))

    def plan(camera: str, index: int) -> Minute:
        if camera != CAMERAS[0]:
            return Minute()  # their passages move stream time
        return Minute(vehicles=0, heartbeat="tampered" if index == 10 else "online")

    assert city.run(plan, 20) == []


def test_a_camera_that_goes_dark_after_reporting_tampered_is_critically_offline() -> None:
    city = City()

    def plan(camera: str, index: int) -> Minute:
        if camera != CAMERAS[0] or index < 10:
            return Minute()
        return Minute(vehicles=0, heartbeat="tampered" if index == 10 else None)

    city.run(plan, 15)
    assert [(a["kind"], a["severity"]) for a in city.opened()] == [("camera_offline", "critical")]


def test_a_quiet_night_does_not_look_silent() -> None:
    night = SlotBaseline(0.4, 0.5, 30.0, 3.0, 0.02, USUAL.class_share)
    city = City(baselines=baselines(night))
    few = during(CAMERAS, 0, 60, Minute(vehicles=0))
    assert city.run(few, 60) == []


# -- each rule ------------------------------------------------------------------------------


def test_a_camera_that_goes_dark_is_offline_within_two_minutes_and_resolves_on_return() -> None:
    city = City()
    alerts = city.run(during(CAMERAS[:1], 20, 30, Minute(vehicles=0, heartbeat=None)), 40)
    opened = city.opened()
    assert [(a["kind"], a["camera_id"]) for a in opened] == [("camera_offline", CAMERAS[0])]
    assert minutes_after(opened[0], 20) <= 2
    resolved = [a for a in alerts if a["state"] == "resolved"]
    assert [a["alert_id"] for a in resolved] == [opened[0]["alert_id"]]
    assert 0 <= minutes_after(resolved[0], 30, "resolved_at") <= 1
    assert [a["version"] for a in alerts if a["alert_id"] == opened[0]["alert_id"]] == sorted(
        {a["version"] for a in alerts if a["alert_id"] == opened[0]["alert_id"]}
    )


def test_many_cameras_going_dark_together_are_one_site_alert() -> None:
    city = City()
    city.run(during(CAMERAS[:4], 20, 30, Minute(vehicles=0, heartbeat=None)), 40)
    assert [(a["kind"], a["camera_id"]) for a in city.opened()] == [("site_offline", "*")]


def test_heartbeats_without_vehicles_are_a_silent_camera() -> None:
    city = City()
    city.run(during(CAMERAS[1:2], 20, 35, Minute(vehicles=0)), 40)
    opened = city.opened()
    assert [(a["kind"], a["camera_id"]) for a in opened] == [("camera_silent", CAMERAS[1])]
    assert minutes_after(opened[0], 20) <= 4


def test_a_frozen_classifier_is_a_stuck_camera() -> None:
    city = City()
    city.run(during(CAMERAS[2:3], 20, 40, Minute(vehicle_class="car", speed=42.0)), 45)
    opened = city.opened()
    assert [(a["kind"], a["camera_id"]) for a in opened] == [("camera_stuck", CAMERAS[2])]
    assert minutes_after(opened[0], 20) <= 6


def test_half_speed_is_congestion_with_hysteresis() -> None:
    city = City()

    def plan(camera: str, index: int) -> Minute:
        if camera != CAMERAS[0]:
            return Minute()
        if 20 <= index < 35:
            return Minute(speed=20.0)
        if 35 <= index < 45:
            return Minute(speed=30.0)  # 0.75 of usual: not congested, not yet clear
        return Minute()

    alerts = city.run(plan, 55)
    opened = city.opened()
    assert [(a["kind"], a["camera_id"]) for a in opened] == [("congestion", CAMERAS[0])]
    assert minutes_after(opened[0], 20) <= 5
    assert opened[0]["ratio"] == pytest.approx(0.5, abs=0.05)
    resolved = [a for a in alerts if a["state"] == "resolved"]
    assert len(resolved) == 1
    # Cleared only once speeds were back above 0.8 of usual, for three minutes.
    assert 3 <= minutes_after(resolved[0], 45, "resolved_at") <= 4


def test_a_flow_drop_and_a_surge_on_single_cameras() -> None:
    city = City()

    def plan(camera: str, index: int) -> Minute:
        if camera == CAMERAS[0] and 20 <= index < 45:
            return Minute(vehicles=6)
        if camera == CAMERAS[1] and 20 <= index < 45:
            return Minute(vehicles=50)
        return Minute()

    city.run(plan, 50)
    opened = {a["kind"]: a for a in city.opened()}
    assert set(opened) == {"flow_drop", "flow_surge"}
    assert opened["flow_drop"]["camera_id"] == CAMERAS[0]
    assert opened["flow_surge"]["camera_id"] == CAMERAS[1]
    assert all(minutes_after(a, 20) <= 10 for a in opened.values())


def test_less_traffic_everywhere_is_one_citywide_shift_not_a_drop_per_camera() -> None:
    city = City()
    city.run(during(CAMERAS, 20, 45, Minute(vehicles=8)), 50)
    assert [(a["kind"], a["camera_id"]) for a in city.opened()] == [("citywide_shift", "*")]


def test_five_times_the_violations_is_a_spike() -> None:
    city = City()
    city.run(during(CAMERAS[3:4], 20, 45, Minute(violations_every=8)), 50)
    opened = city.opened()
    assert [(a["kind"], a["camera_id"]) for a in opened] == [("violation_spike", CAMERAS[3])]
    assert minutes_after(opened[0], 20) <= 15


# -- lifecycle and determinism -----------------------------------------------------------------


def test_a_retrigger_within_15_minutes_reopens_the_same_alert() -> None:
    city = City()

    def plan(camera: str, index: int) -> Minute:
        dark = 10 <= index < 15 or 20 <= index < 25
        return Minute(vehicles=0, heartbeat=None) if camera == CAMERAS[0] and dark else Minute()

    alerts = city.run(plan, 30)
    ids = {a["alert_id"] for a in alerts}
    assert len(ids) == 1
    assert [a["state"] for a in alerts] == ["open", "resolved", "open", "resolved"]
    assert alerts[2]["reopens"] == 1
    assert [a["version"] for a in alerts] == [1, 2, 3, 4]


def test_an_alert_that_keeps_coming_back_is_flapping_and_stays_open() -> None:
    city = City()

    def plan(camera: str, index: int) -> Minute:
        dark = index >= 10 and index % 4 in (0, 1)
        return Minute(vehicles=0, heartbeat=None) if camera == CAMERAS[0] and dark else Minute()

    alerts = city.run(plan, 40)
    assert any(a["flapping"] for a in alerts)
    transitions = [a["state"] for a in alerts if a["state"] != "updated"]
    # Without flapping detection this would be open/resolved eight times over.
    assert transitions.count("resolved") < 5


def test_late_events_of_a_judged_minute_update_the_open_alerts_evidence() -> None:
    city = City()
    plan = during(CAMERAS[:1], 20, 45, Minute(vehicles=6))
    city.run(plan, 30)
    (drop,) = city.opened("flow_drop")
    # Ten passages of minute 28, judged already, arrive late (within the 2-minute grace).
    late = [camera_event(CAMERAS[0], T0 + 28 * MINUTE + 30_000 + n, "passage",
                         vehicle_class="motorbike", speed_kmh=40.0) for n in range(10)]  # fmt: skip
    for event in late:
        fold_event(city.flow, city.state, city.offset, orjson.dumps(event), city.records)
        city.offset += 1
    city.run(plan, 2, first_minute=30)
    writes = [a for a in city.alerts() if a["alert_id"] == drop["alert_id"]]
    revised = [a for a in writes if minutes_after(a, 29, "updated_at") == pytest.approx(50 / 60)]
    # Its evidence is minutes 24-28 (the last judged): what they counted, and the ten.
    counted = sum(1 for e in events(plan, 24, 5) if e["camera_id"] == CAMERAS[0]
                  and e["kind"] == "passage")  # fmt: skip
    assert [(a["state"], a["observed"]) for a in revised] == [("updated", counted + 10)]
    assert revised[0]["ratio"] == pytest.approx((counted + 10) / revised[0]["expected"])
    assert [a["version"] for a in writes] == list(range(1, len(writes) + 1))


def test_alerts_do_not_depend_on_where_checkpoints_fall() -> None:
    plan = during(CAMERAS[:2], 20, 40, Minute(speed=18.0, vehicles=5))
    first, second = City(cut_every=97), City(cut_every=3_001)
    assert first.run(plan, 50) == second.run(plan, 50)
    assert first.alerts()


def test_alerts_continue_exactly_from_a_restored_state() -> None:
    plan = during(CAMERAS[:1], 20, 40, Minute(vehicles=0, heartbeat=None))
    straight = City()
    straight.run(plan, 50)
    restored = City()
    restored.run(plan, 25)
    restored.cut()
    # A restart loads what the checkpoints saved: a change not marked would be lost here.
    restored.state.keyed = dict(restored.saved)
    restored.run(plan, 25, first_minute=25)
    assert restored.alerts() == straight.alerts()


def test_a_jump_of_stream_time_is_judged_over_its_last_hour_only() -> None:
    city = City()
    city.run(usual, 5)
    ahead = T0 + 5 * MINUTE + 10 * MAX_CATCH_UP_MS
    # Two cameras: one alone may lead the others by half the grace only (streams/engine/lead.py).
    for offset, camera in enumerate(CAMERAS[:2]):
        fold_event(city.flow, city.state, 10**6 + offset, orjson.dumps(camera_event(camera, ahead,
                   "passage", vehicle_class="car")), city.records)  # fmt: skip
    (site,) = city.opened()
    assert site["kind"] == "site_offline"
    assert site["opened_at"].timestamp() * 1000 >= ahead - MAX_CATCH_UP_MS


def test_poisson_tail_is_exact_far_out() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 3.0) == pytest.approx(1 - 2.718281828**-3)
    assert 0 < poisson_tail(60, 10.0) < 1e-20
