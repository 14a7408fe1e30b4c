"""Examples the fuzzer found, shrunk, kept as they were found (issue 16)."""

from __future__ import annotations

import orjson
import pytest

from city.profile import load_city_profile
from schemas.exceptions import InvalidEvent
from streams.engine.definition import Records
from streams.engine.window_stage import fold_event
from streams.traffic.anomaly.baselines import NO_BASELINES
from streams.traffic.flow import TrafficFlow
from tests.factories import MINUTE_MS, T0, passage
from tests.fuzz.test_decoding import judge
from tests.fuzz.verdicts import reason_problem

FOUND = [
    # A passage keyed by no camera: it opened a second window of its camera-minute on another
    # partition, and the two rows overwrote each other (tests/streams/test_engine.py too).
    (
        "camera.events",
        '{"event_id":"~3","camera_id":"VT-CAM-185","kind":"passage",'
        '"ts":"2026-12-05t12:28:21.265000000+23:59","vehicle_class":"car"}',
        "key",
        None,
    ),
    # A reason quoted the unknown `kind` a producer sent.
    (
        "camera.events",
        '{"event_id":"~1","camera_id":"VT-CAM-001","kind":"⟦fz⟧","ts":"2026-12-04T12:21:36Z",'
        '"vehicle_class":"motorbike"}',
        "kind",
        b"VT-CAM-001",
    ),
    # A reason's path ended in the producer's own unknown method key.
    (
        "payments.terminal-counts",
        '{"event_id":"~2","terminal_id":"VT-T-00001","merchant_id":"0","ward":"long-son",'
        '"category":"grocery","counts":{},"period_start":"2026-12-04T12:23:08Z",'
        '"period_end":1796386988001,"amounts_vnd":{"⟦fz⟧":1}}',
        "amounts_vnd",
        b"VT-T-00001",
    ),
]


@pytest.mark.parametrize(("topic", "value", "field", "key"), FOUND)
def test_a_found_message_is_refused_naming_its_field_without_quoting_it(
    topic: str, value: str, field: str, key: bytes
) -> None:
    with pytest.raises(InvalidEvent) as refused:
        judge(topic, key, value.encode())
    assert reason_problem(refused.value.reason, frozenset({field})) is None


@pytest.mark.parametrize(
    "ts", ["2016-12-31T23:59:60Z", "2017-01-01T06:59:60.500+07:00", "2016-12-31t23:59:60.25z"]
)
def test_a_leap_second_is_a_valid_time_in_its_minute(ts: str) -> None:
    """RFC 3339 allows 23:59:60 UTC; it was a dead letter ("not an RFC 3339 time")."""
    value = (
        '{"event_id":"~4","camera_id":"VT-CAM-001","kind":"passage","vehicle_class":"car",'
        f'"ts":"{ts}"}}'
    )
    assert judge("camera.events", b"VT-CAM-001", value.encode()).ts == 1_483_228_799_999


def test_a_leaders_held_back_time_counts_once_the_others_come_near() -> None:
    """Found by the long run (seed 697394988): the engine moved stream time to each event's
    own time, capped, so a leader's held-back time counted only when it spoke again, while
    the rule (streams/engine/lead.py, the README) and the model let it count as soon as the
    others came within half the grace; the worker counted an event the model judged late."""
    flow = TrafficFlow(load_city_profile(), 120, NO_BASELINES)
    state = flow.new_state()
    for offset, (camera, ts) in enumerate(
        [
            ("VT-CAM-001", T0),
            ("VT-CAM-002", T0 + 10 * MINUTE_MS),  # ahead: stream time held at T0 + 60 s
            ("VT-CAM-001", T0 + 5 * MINUTE_MS),  # the leader's time may count to 05:00 + 60 s
            ("VT-CAM-001", T0 + 3 * MINUTE_MS),  # minute 3 ends at 04:00, its grace at 06:00
        ]
    ):
        event = passage(f"e{offset}", camera, ts)
        fold_event(flow, state, offset, orjson.dumps(event), Records(), key=camera.encode())
    assert state.stream_time_ms == T0 + 6 * MINUTE_MS
    assert state.counters.late == 1
