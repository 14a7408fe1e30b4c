"""Numbers as each language writes them, and read back as the page's test reads them."""

from __future__ import annotations

import pytest

from vtops.report.language import NUMBERS, Language, duration, parse_number


@pytest.mark.parametrize(
    ("language", "value", "decimals", "shown"),
    [
        ("vi", 1234.5, 1, "1.234,5"),
        ("en", 1234.5, 1, "1,234.5"),
        ("vi", 1_000_000, 0, "1.000.000"),
        ("vi", 99.85, 2, "99,85"),
        ("en", 0.04, 1, "0.0"),
    ],
)
def test_numbers_follow_the_language(
    language: Language, value: float, decimals: int, shown: str
) -> None:
    assert NUMBERS[language].number(value, decimals) == shown
    assert parse_number(shown, language) == pytest.approx(round(value, decimals))


def test_nothing_measured_is_a_dash_never_zero() -> None:
    assert NUMBERS["vi"].percent(None) == "–"
    assert NUMBERS["vi"].percent(97.63, 2) == "97,63%"
    assert parse_number("97,63%", "vi") == 97.63


def test_durations() -> None:
    assert duration(28, "vi") == "28 giây"
    assert duration(3725, "vi") == "1 giờ 02 phút"
    assert duration(600, "en") == "10 min"
