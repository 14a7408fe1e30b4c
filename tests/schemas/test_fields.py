"""The time parser's fast path for the common shape (schemas/fields.py) answers as the full
parser does, for every string: the same epoch ms, or the same refusal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.fields import _parsed_epoch_ms, to_epoch_ms

# Pieces of times: most make the common shape, the rest break it in one place or another.
_DIGITS = st.text("0123456789", min_size=1, max_size=4)
_PIECES = st.lists(
    st.one_of(
        st.sampled_from(
            ["2025-09-15", "1999-12-31", "2099-12-31", "2016-12-31", "2025-02-29", "2025-9-15"]
        ),
        st.sampled_from(["T", "t", " ", "x"]),
        st.sampled_from(["07:00:", "23:59:", "24:00:", "00:00:", "07:0:"]),
        st.sampled_from(["00", "59", "60", "61", "5", "0٣"]),
        st.sampled_from([".", ",", ""]),
        _DIGITS,
        st.sampled_from(["+07:00", "-02:30", "Z", "z", "+0700", "+07:00x", "", "+24:00"]),
    ),
    min_size=1,
    max_size=8,
)


def _answer(value: str) -> int | str:
    try:
        return _parsed_epoch_ms(value)
    except ValueError as error:
        return str(error)


def _fast(value: str) -> int | str:
    try:
        return to_epoch_ms(value)
    except ValueError as error:
        return str(error)


@settings(max_examples=1000)
@given(_PIECES)
def test_any_string_gets_the_full_parsers_answer(pieces: list[str]) -> None:
    value = "".join(pieces)
    assert _fast(value) == _answer(value)


@settings(max_examples=500)
@given(
    st.sampled_from(
        ["2025-09-15T07:00:", "2099-12-31T23:59:", "1999-12-31T23:59:", "2016-12-31T23:59:"]
    ),
    st.integers(0, 61),
    st.integers(0, 999),
    st.sampled_from(["+07:00", "Z", "-00:30", "+14:00"]),
)
def test_the_common_shape_gets_the_full_parsers_answer(
    minute: str, second: int, milli: int, offset: str
) -> None:
    value = f"{minute}{second:02d}.{milli:03d}{offset}"
    assert _fast(value) == _answer(value)
