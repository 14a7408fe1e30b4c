"""Issue 16, 6: one camera's fast clock must not make its partition-mates late."""

from __future__ import annotations

import orjson

from city.profile import load_city_profile
from streams.engine.definition import Records
from streams.engine.lead import SILENT_AFTER, Leaders
from streams.engine.window_stage import fold_event
from streams.traffic.anomaly.baselines import NO_BASELINES
from streams.traffic.flow import TrafficFlow
from tests.factories import MINUTE_MS, T0, passage

GRACE_S = 120
HONEST = [f"VT-CAM-{n:03d}" for n in range(1, 31)]
FAST = "VT-CAM-099"  # its clock runs ten minutes fast


def test_a_camera_ten_minutes_fast_leaves_its_partition_mates_on_time() -> None:
    """Stream time was the largest event time of the partition: the fast camera's first
    passage made every other camera's minute late against the 120 s grace."""
    flow = TrafficFlow(load_city_profile(), GRACE_S, NO_BASELINES)
    state, records, offset = flow.new_state(), Records(), 0
    for second in range(0, 5 * 60, 10):  # five minutes of traffic, every camera every 10 s
        for camera in [*HONEST, FAST]:
            ts = T0 + second * 1000 + (10 * MINUTE_MS if camera == FAST else 0)
            event = passage(f"{camera}-{second}", camera, ts)
            fold_event(flow, state, offset, orjson.dumps(event), records, key=camera.encode())
            offset += 1
    assert state.counters.late == 0
    assert state.counters.accepted == offset  # the fast camera's passages count too
    assert state.counters.ahead == 30  # each of them, reported
    # The honest cameras' latest time (4:50) plus half the grace.
    assert state.stream_time_ms == T0 + 290_000 + GRACE_S * 1000 // 2
    honest_minutes = {w.start_ms for w in state.open_windows() if w.group[0] != FAST}
    assert honest_minutes == {T0 + m * MINUTE_MS for m in range(5)}


def test_two_producers_agreeing_move_stream_time_at_once() -> None:
    """A partition catching up after an outage: every camera jumps ahead together."""
    leaders = Leaders()
    leaders.see("a", T0)
    leaders.see("b", T0)
    leaders.see("a", T0 + 3_600_000)
    assert leaders.bound(60_000) == T0 + 60_000
    leaders.see("b", T0 + 3_600_000)
    assert leaders.bound(60_000) == T0 + 3_600_000
    assert Leaders.from_state(leaders.to_state()) == leaders


def test_a_leader_alone_for_long_is_followed_the_others_went_silent() -> None:
    """Every other camera of the partition dark: its ticks must go on, or nothing is raised."""
    leaders = Leaders()
    leaders.see("dark", T0)
    leaders.see("alive", T0)
    for n in range(1, SILENT_AFTER + 2):  # the first makes it the leader, then it is alone
        leaders.see("alive", T0 + n * 10_000)
        assert leaders.bound(60_000) == min(T0 + n * 10_000, T0 + 60_000)
    leaders.see("alive", T0 + 3_600_000)
    assert leaders.bound(60_000) == T0 + 3_600_000
