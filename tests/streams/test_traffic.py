"""The traffic stream's windows across a change of the city profile (issue 16, 3)."""

from __future__ import annotations

import orjson
import pytest

from city.profile import CityProfile, load_city_profile
from streams.engine.definition import Records
from streams.engine.windows import Window
from streams.traffic.anomaly.baselines import NO_BASELINES
from streams.traffic.flow import TrafficFlow
from tests.factories import T0, passage

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
