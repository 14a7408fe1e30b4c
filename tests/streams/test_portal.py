"""The portal stream driven directly: deadlines per dossier, their expiry, rows and state."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest

from city.profile import load_city_profile
from schemas.exceptions import InvalidEvent
from streams import portal
from streams.engine.definition import Records, route_key
from streams.engine.window_stage import fold_event
from streams.engine.windows import PartitionWindows
from streams.portal import DAY_MS, DOSSIER_RETENTION_MS, PortalCounts, PortalKpis
from tests.factories_portal import at, step

GRACE_S = 172_800


def fold(
    stream: PortalKpis, state: PartitionWindows[PortalCounts], events: list[dict[str, Any]]
) -> None:
    for event in events:
        fold_event(stream, state, state.offset + 1, orjson.dumps(event), Records())
        state.offset += 1


def test_a_resolution_takes_the_latest_deadline_not_after_it() -> None:
    stream = PortalKpis(load_city_profile(), GRACE_S)
    state = stream.new_state()
    fold(
        stream,
        state,
        [
            step("a", "D", "2024-09-14T08:00:00+07:00", "accepted", due_at="2024-09-14T03:00:00Z"),
            step(
                "b",
                "D",
                "2024-09-14T09:00:00+07:00",
                "accepted",
                due_at="2024-09-14T12:00:00+07:00",
            ),
            # Processed before the resolution, but later than it: not its deadline.
            step(
                "x",
                "D",
                "2024-09-14T15:00:00+07:00",
                "supplement_requested",
                due_at="2024-09-30T10:00:00+07:00",
            ),
            step("r", "D", "2024-09-14T13:00:00+07:00", "resolved"),  # after 12:00: late
            step("r2", "D", "2024-09-14T11:00:00+07:00", "resolved"),  # before 12:00: on time
        ],
    )
    counts = next(state.open_windows()).acc
    assert (counts.resolved, counts.resolved_on_time, counts.resolved_no_due) == (2, 1, 0)
    assert state.keyed["dossier:D"] == {
        "last_ts": at("2024-09-14T15:00:00+07:00"),
        "deadlines": [
            [at("2024-09-14T08:00:00+07:00"), at("2024-09-14T10:00:00+07:00")],
            [at("2024-09-14T09:00:00+07:00"), at("2024-09-14T12:00:00+07:00")],
            [at("2024-09-14T15:00:00+07:00"), at("2024-09-30T10:00:00+07:00")],
        ],
    }


def test_dossier_state_expires_after_the_retention_and_is_swept_once_a_day() -> None:
    stream = PortalKpis(load_city_profile(), GRACE_S)
    state = stream.new_state()
    start = at("2024-01-02T09:00:00+07:00")
    fold(stream, state, [step("a", "OLD", start, "accepted", due_at=start + 400 * DAY_MS)])
    state.take_keyed_changes()
    # Stream time moves on through two other dossiers (one alone moves it only half the grace
    # past the others, streams/engine/lead.py); at the retention exactly, OLD is kept.
    kept = start + DOSSIER_RETENTION_MS
    fold(stream, state, [step("k", "NEW", kept, "accepted"), step("j", "NEW2", kept, "accepted")])
    assert "dossier:OLD" in state.keyed
    fold(stream, state, [step("k2", "NEW", start + DOSSIER_RETENTION_MS + DAY_MS, "accepted")])
    assert "dossier:OLD" not in state.keyed
    assert state.take_keyed_changes()[1] == ["dossier:OLD"]
    # A step of OLD now starts it afresh: its resolution knows no deadline.
    fold(stream, state, [step("r", "OLD", start + DOSSIER_RETENTION_MS + DAY_MS + 1, "resolved")])
    resolved = [w.acc for w in state.open_windows() if w.acc.resolved]
    assert [(c.resolved_on_time, c.resolved_no_due) for c in resolved] == [(0, 1)]


def test_an_expired_dossier_is_forgotten_even_before_the_sweep() -> None:
    stream = PortalKpis(load_city_profile(), GRACE_S)
    state = stream.new_state()
    start = at("2024-01-02T09:00:00+07:00")
    late = start + DOSSIER_RETENTION_MS + 1
    fold(
        stream,
        state,
        [
            step("a", "D", start, "accepted", due_at=late + DAY_MS),
            # Same UTC day as `late`: no sweep in between.
            step("r", "D", late, "resolved"),
        ],
    )
    assert (late // DAY_MS) == ((late + 1) // DAY_MS)
    resolved = [w.acc for w in state.open_windows() if w.acc.resolved]
    assert [(c.resolved_on_time, c.resolved_no_due) for c in resolved] == [(0, 1)]


def test_window_row_names_the_local_day_and_state_round_trips() -> None:
    stream = PortalKpis(load_city_profile(), GRACE_S)
    state = stream.new_state()
    fold(
        stream,
        state,
        [
            step(
                "s",
                "D",
                "2024-09-14T17:30:00Z",
                "submitted",
                service_level="full",
                auth="vneid_l2",
                paid_online=True,
            )
        ],
    )
    window = next(state.open_windows())
    row = stream.window_row(window, final=False)
    assert row["day"] == date(2024, 9, 15) and row["agency"] == "ubnd-phuong-1"
    assert (
        row["submitted"],
        row["submitted_online"],
        row["submitted_full_online"],
        row["submitted_vneid_l2"],
        row["paid_online"],
        row["final"],
    ) == (1, 1, 1, 1, 1, 0)
    assert stream.acc_from_state(window.group, stream.acc_to_state(window.acc)) == window.acc
    withdrawn = step("w", "D", "2024-09-14T17:30:00Z", "withdrawn")
    assert (
        route_key(stream.assign(stream.decode(orjson.dumps(withdrawn))).group)
        == "ubnd-phuong-1|1.001193"
    )


def test_invalid_steps_raise_and_change_nothing() -> None:
    stream = PortalKpis(load_city_profile(), GRACE_S)
    state = stream.new_state()
    with pytest.raises(InvalidEvent, match=r"^channel:"):
        fold(
            stream,
            state,
            [{**step("s", "D", "2024-09-14T17:30:00Z", "submitted"), "channel": None}],
        )
    assert not state.windows and not state.keyed and state.stream_time_ms is None


def test_days_are_the_city_profiles_even_when_its_clocks_go_back() -> None:
    """A city in Lisbon: 27 October 2024 lasts 25 hours there (clocks go back at 02:00)."""
    lisbon = load_city_profile().model_copy(update={"timezone": "Europe/Lisbon"})
    stream = PortalKpis(lisbon, GRACE_S)
    state = stream.new_state()
    fold(
        stream,
        state,
        [
            step("first", "A", "2024-10-27T00:30:00+01:00", "submitted"),  # 23:30 UTC on the 26th
            step("last", "B", "2024-10-27T23:30:00+00:00", "submitted"),
            step("next", "C", "2024-10-28T00:30:00+00:00", "submitted"),
        ],
    )
    windows = sorted(state.open_windows(), key=lambda w: w.start_ms)
    assert [(w.start_ms, w.end_ms) for w in windows] == [
        (at("2024-10-27T00:00:00+01:00"), at("2024-10-28T00:00:00+00:00")),
        (at("2024-10-28T00:00:00+00:00"), at("2024-10-29T00:00:00+00:00")),
    ]
    assert windows[0].acc.submitted == 2
    rows = [stream.window_row(w, final=False) for w in windows]
    assert [row["day"] for row in rows] == [date(2024, 10, 27), date(2024, 10, 28)]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"agency": "ubnd-phuong-99"}, "agency"), ({"procedure_code": "9.999999"}, "procedure_code")],
)
def test_an_agency_or_procedure_the_profile_does_not_know_is_invalid(
    change: dict[str, str], field: str
) -> None:
    """Issue 16, 5: any (agency, procedure) pair opened windows and kept dossiers."""
    stream = PortalKpis(load_city_profile(), GRACE_S)
    raw = orjson.dumps({**step("a", "D", at("2024-09-14T09:00:00+07:00"), "submitted"), **change})
    with pytest.raises(InvalidEvent, match=f"^{field}: not an? .* of the city profile$"):
        stream.decode(raw)


def test_dossiers_beyond_what_a_partition_keeps_forget_the_stalest_tenth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 16, 5: dossiers with a due date were kept 180 days with no cap."""
    monkeypatch.setattr(portal, "MAX_DOSSIERS", 20)
    stream = PortalKpis(load_city_profile(), GRACE_S)
    state = stream.new_state()
    start = at("2024-09-14T09:00:00+07:00")
    steps = [
        step(f"s{n}", f"D{n}", start + n * 1000, "accepted", due_at=start + DAY_MS)
        for n in range(21)
    ]
    fold(stream, state, steps)
    assert len(state.keyed) == 19  # 21 kept, then the stalest two (a tenth of 20) forgotten
    assert "dossier:D0" not in state.keyed and "dossier:D1" not in state.keyed
    assert "dossier:D20" in state.keyed
