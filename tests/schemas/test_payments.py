"""payments.terminal-counts validation: the contract's rules, and reasons that name the field."""

from __future__ import annotations

import orjson
import pytest

from schemas.decoding import decode
from schemas.exceptions import InvalidEvent
from schemas.payments import MAX_PERIOD_MS, TERMINAL_COUNTS, TerminalCounts

START = 1_726_272_000_000  # 2024-09-14T07:00:00+07:00
TALLY = {
    "event_id": "p1",
    "terminal_id": "VT-T-00001",
    "merchant_id": "VT-M-0001",
    "ward": "phuong-1",
    "category": "grocery",
    "period_start": "2024-09-14T07:00:00+07:00",
    "period_end": "2024-09-14T07:10:00+07:00",
    "counts": {"cash": 4, "vietqr": 6},
}


def _decode(event: object) -> TerminalCounts:
    return decode(TERMINAL_COUNTS, orjson.dumps(event))


def test_missing_methods_are_zero_and_amounts_optional() -> None:
    tally = _decode(TALLY)
    assert tally.period_start == START and tally.period_end == START + 600_000
    assert (
        tally.counts.cash,
        tally.counts.vietqr,
        tally.counts.card,
        tally.counts.ewallet,
        tally.counts.bank_transfer,
    ) == (4, 6, 0, 0, 0)
    assert tally.amounts_vnd is None
    with_amounts = _decode({**TALLY, "amounts_vnd": {"vietqr": 450_000}, "note": "ignored"})
    assert with_amounts.amounts_vnd is not None
    assert with_amounts.amounts_vnd.vietqr == 450_000 and with_amounts.amounts_vnd.cash == 0


def test_a_period_of_exactly_one_hour_and_both_time_encodings_are_valid() -> None:
    tally = _decode(
        {**TALLY, "period_start": START, "period_end": "2024-09-14T01:00:00Z", "counts": {}}
    )
    assert tally.period_end - tally.period_start == MAX_PERIOD_MS


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 65}, "event_id"),
        ({"terminal_id": ""}, "terminal_id"),
        ({"terminal_id": 17}, "terminal_id"),
        ({"merchant_id": "m" * 65}, "merchant_id"),
        ({"ward": None}, "ward"),
        ({"category": "bank"}, "category"),
        ({"category": "Grocery"}, "category"),
        ({"period_start": "2024-09-14T07:00:00"}, "period_start"),
        ({"period_start": True}, "period_start"),
        ({"period_end": "2024-09-14T07:00:00+07:00"}, "period_end"),  # not after the start
        ({"period_end": "2024-09-14T06:59:00+07:00"}, "period_end"),
        ({"period_end": START + MAX_PERIOD_MS + 1}, "period_end"),  # over an hour
        ({"period_end": "soon"}, "period_end"),
        ({"counts": None}, "counts"),
        ({"counts": [1, 2]}, "counts"),
        ({"counts": 5}, "counts"),
        ({"counts": {"cash": -1}}, "counts.cash"),
        ({"counts": {"vietqr": 1.5}}, "counts.vietqr"),
        ({"counts": {"vietqr": 2.0}}, "counts.vietqr"),
        ({"counts": {"card": "3"}}, "counts.card"),
        ({"counts": {"ewallet": True}}, "counts.ewallet"),
        ({"counts": {"bank_transfer": 10**12}}, "counts.bank_transfer"),
        ({"counts": {"paypal": 1}}, "counts"),
        ({"counts": {"Cash": 1}}, "counts"),
        ({"amounts_vnd": "lots"}, "amounts_vnd"),
        ({"amounts_vnd": {"cash": -5}}, "amounts_vnd.cash"),
        ({"amounts_vnd": {"momo": 5}}, "amounts_vnd"),
        ({"amounts_vnd": {"card": 10**14}}, "amounts_vnd.card"),
    ],
)
def test_invalid_field_is_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        _decode({**TALLY, **change})
    assert caught.value.reason.startswith(f"{field}:"), caught.value.reason


@pytest.mark.parametrize(
    "missing",
    [
        "event_id",
        "terminal_id",
        "merchant_id",
        "ward",
        "category",
        "period_start",
        "period_end",
        "counts",
    ],
)
def test_missing_required_field_is_named(missing: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        _decode({k: v for k, v in TALLY.items() if k != missing})
    assert caught.value.reason == f"{missing}: Field required"


def test_period_end_reason_says_what_is_wrong() -> None:
    with pytest.raises(InvalidEvent, match=r"^period_end: must be at most 1 hour after"):
        _decode({**TALLY, "period_end": "2024-09-14T08:00:01+07:00"})
    with pytest.raises(InvalidEvent, match=r"^period_end: must be after period_start"):
        _decode({**TALLY, "period_end": TALLY["period_start"]})
