"""The traffic stream's windows across a change of the city profile (issue 16, 3)."""

from __future__ import annotations

import orjson
import pytest

from city.profile import CityProfile, load_city_profile
from streams.engine.definition import Records
from streams.engine.windows import Window
from streams.traffic.anomaly.baselines import NO_BASELINES
from streams.traffic.flow import TrafficFlow
from tests.factories import T0, passage, violation

RETIRED = "VT-CAM-005"


def without(profile: CityProfile, camera_id: str) -> CityProfile:
    return profile.model_copy(
        update={"cameras": tuple(c for c in profile.cameras if c.camera_id != camera_id)}
    )


def open_window_state(stream: TrafficFlow) -> tuple[tuple[str, ...], dict[str, object]]:
    """A window of RETIRED with two passages, as a checkpoint saves it."""
    state = stream.new_state()
    for n in range(2):
        event = stream.decode(orjson.dumps(passage(f"e{n}", RETIRED, T0 + n)))
        assignment = stream.assign(event)
        assert assignment is not None and not state.is_late(
            assignment.end_ms, assignment.event_time_ms
        )
        window = state.admit(
            assignment.event_id, assignment.group, assignment.start_ms, assignment.end_ms, n
        )
        stream.fold(state, event, window, Records())
    (window,) = state.open_windows()
    return window.group, stream.acc_to_state(window.acc)


@pytest.mark.parametrize("saved_before_wards_were_kept", [False, True])
def test_a_window_of_a_camera_retired_from_the_profile_is_still_finalised(
    saved_before_wards_were_kept: bool,
) -> None:
    """The worker stopped with the camera's minute open and restarted with a profile without
    it: the checkpoint's window_row raised KeyError, on every restart."""
    profile = load_city_profile()
    ward = next(c.ward for c in profile.cameras if c.camera_id == RETIRED)
    group, saved = open_window_state(TrafficFlow(profile, 120, NO_BASELINES))
    if saved_before_wards_were_kept:
        del saved["ward"]
    restarted = TrafficFlow(without(profile, RETIRED), 120, NO_BASELINES)
    window = Window(group, T0, T0 + 60_000, restarted.acc_from_state(group, saved), 0, 1)
    row = restarted.window_row(window, final=True)
    assert (row["camera_id"], row["vehicles"], row["final"]) == (RETIRED, 2, 1)
    assert row["ward"] == ("" if saved_before_wards_were_kept else ward)


def test_a_flow_windows_saved_counts_read_back_whole_and_apart_from_the_live_ones() -> None:
    """Every field of a camera-minute survives its checkpoint entry (a field the entry left
    out would read back as its default), and the entry does not change as the window goes on
    counting while the checkpoint's writes are under way."""
    stream = TrafficFlow(load_city_profile(), 120, NO_BASELINES)
    state, records = stream.new_state(), Records()
    events = [passage("p1", RETIRED, T0, "car", 41.5), violation("v1", RETIRED, T0 + 1)]
    for offset, raw in enumerate(events):
        event = stream.decode(orjson.dumps(raw))
        assignment = stream.assign(event)
        assert assignment is not None
        window = state.admit(
            assignment.event_id, assignment.group, assignment.start_ms, assignment.end_ms, offset
        )
        stream.fold(state, event, window, records)
    (window,) = state.open_windows()
    saved = orjson.loads(orjson.dumps(stream.acc_to_state(window.acc)))
    assert stream.acc_from_state(window.group, saved) == window.acc
    kept = stream.acc_to_state(window.acc)
    window.acc.by_class["car"] += 1
    assert kept["by_class"]["car"] == 1
