"""The payments stream driven directly: hour windows by period_start, rows and state."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from city.profile import load_city_profile
from schemas.exceptions import InvalidEvent
from streams.engine.definition import Records, route_key
from streams.engine.window_stage import fold_event
from streams.engine.windows import PartitionWindows
from streams.payments import CashlessPayments, CashlessTally, max_terminals
from tests.factories_payments import HOUR_MS, MINUTE_MS, T0, tally

GRACE_S = 900


def fold(
    stream: CashlessPayments, state: PartitionWindows[CashlessTally], events: list[dict[str, Any]]
) -> None:
    for event in events:
        fold_event(stream, state, state.offset + 1, orjson.dumps(event), Records())
        state.offset += 1


@pytest.fixture
def stream() -> CashlessPayments:
    return CashlessPayments(load_city_profile(), GRACE_S)


def test_period_start_decides_the_window_and_stream_time(stream: CashlessPayments) -> None:
    state = stream.new_state()
    # 07:59-08:59 belongs to 07:00 and leaves stream time at 07:59: 07:00 stays open.
    fold(stream, state, [tally("a", "T1", T0 + 59 * MINUTE_MS, 60, counts={"cash": 1})])
    assert state.stream_time_ms == T0 + 59 * MINUTE_MS
    fold(stream, state, [tally("b", "T2", T0 + HOUR_MS + 15 * MINUTE_MS - 1)])
    fold(stream, state, [tally("c", "T3", T0)])  # within grace
    assert state.windows[(("phuong-1", "grocery"), T0)].acc.reports == 2
    # Two terminals at 08:15 (one alone moves stream time only half the grace past the
    # others, streams/engine/lead.py) close 07:00.
    closing = T0 + HOUR_MS + 15 * MINUTE_MS
    fold(stream, state, [tally("d", "T2", closing), tally("d2", "T3", closing)])
    fold(stream, state, [tally("e", "T4", T0)])
    assert state.counters.late == 1


def test_row_sums_methods_amounts_and_distinct_terminals(stream: CashlessPayments) -> None:
    state = stream.new_state()
    fold(
        stream,
        state,
        [
            tally(
                "a",
                "T1",
                T0,
                counts={"cash": 3, "vietqr": 1},
                amounts={"cash": 90_000, "vietqr": 40_000},
            ),
            tally(
                "b",
                "T1",
                T0 + 10 * MINUTE_MS,
                counts={"card": 2, "ewallet": 4, "bank_transfer": 5},
                amounts={"card": 500_000, "bank_transfer": 1_000_000, "ewallet": 60_000},
            ),
            tally("c", "T2", T0 + 20 * MINUTE_MS, counts={}),
            tally("a", "T9", T0 + 30 * MINUTE_MS, counts={"cash": 100}),  # same id: a duplicate
        ],
    )
    window = next(state.open_windows())
    row = stream.window_row(window, final=True)
    assert {
        k: row[k]
        for k in (
            "ward",
            "category",
            "reports",
            "terminals",
            "cash",
            "vietqr",
            "card",
            "ewallet",
            "bank_transfer",
            "cash_amount_vnd",
            "cashless_amount_vnd",
            "cashless_share",
            "final",
        )
    } == {
        "ward": "phuong-1",
        "category": "grocery",
        "reports": 3,
        "terminals": 2,
        "cash": 3,
        "vietqr": 1,
        "card": 2,
        "ewallet": 4,
        "bank_transfer": 5,
        "cash_amount_vnd": 90_000,
        "cashless_amount_vnd": 1_600_000,
        "cashless_share": 12 / 15,
        "final": 1,
    }
    assert row["window_start"].isoformat() == "2024-09-14T07:00:00+07:00"
    saved = stream.acc_to_state(window.acc)
    assert saved["terminals"] == ["T1", "T2"]
    assert orjson.loads(orjson.dumps(saved)) == saved
    assert stream.acc_from_state(window.group, saved) == window.acc


def test_no_counts_means_share_zero(stream: CashlessPayments) -> None:
    assert CashlessTally().cashless_share == 0.0


def test_unknown_ward_is_invalid_and_names_the_ward(stream: CashlessPayments) -> None:
    state = stream.new_state()
    with pytest.raises(InvalidEvent, match=r"^ward: not a ward of the city profile$"):
        fold(stream, state, [tally("a", "T1", T0, ward="phuong-6")])
    with pytest.raises(InvalidEvent, match=r"^ward:"):
        stream.decode(orjson.dumps(tally("a", "T1", T0, ward="Phuong-1")))
    assert not state.windows
    routed = stream.assign(stream.decode(orjson.dumps(tally("a", "T1", T0))))
    assert route_key(routed.group) == "phuong-1|grocery"


def test_a_window_remembers_a_bounded_number_of_terminals_and_counts_every_tally(
    stream: CashlessPayments,
) -> None:
    """Issue 16, 5: each window's terminal set grew without limit (20k invented terminal ids
    were 1.3 MB re-written per window at every checkpoint)."""
    state = stream.new_state()
    invented = [tally(f"e{n}", f"X-{n}", T0, counts={"cash": 1}) for n in range(500)]
    fold(stream, state, invented)
    (window,) = state.open_windows()
    listed = sum(
        len(payee.terminals) for payee in load_city_profile().payees if payee.ward == "phuong-1"
    )
    assert len(window.acc.terminals) == max_terminals(listed) < 500
    row = stream.window_row(window, final=False)
    assert (row["reports"], row["cash"], row["terminals"]) == (500, 500, max_terminals(listed))
    restored = stream.acc_from_state(window.group, stream.acc_to_state(window.acc))
    assert restored.max_terminals == window.acc.max_terminals
