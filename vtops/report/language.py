"""The report's words and number formats, in Vietnamese (the default) and English.

The indicators carry the article's own wording; wards, agencies and roads keep the names the
city writes (the profile's), whatever the language. Numbers follow the language: 1.234,5 in
Vietnamese, 1,234.5 in English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

Language = Literal["vi", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("vi", "en")


@dataclass(frozen=True)
class Numbers:
    thousands: str
    decimal: str

    def number(self, value: float | int | None, decimals: int = 0) -> str:
        """`value` with grouped thousands; None (nothing measured) as a dash."""
        if value is None:
            return "–"
        text = f"{value:,.{decimals}f}"
        return text.replace(",", "\0").replace(".", self.decimal).replace("\0", self.thousands)

    def percent(self, value: float | None, decimals: int = 1) -> str:
        return "–" if value is None else f"{self.number(value, decimals)}%"


NUMBERS: Final[dict[Language, Numbers]] = {"vi": Numbers(".", ","), "en": Numbers(",", ".")}


def parse_number(text: str, language: Language) -> float:
    """A number as the page shows it, back to a float (the tests read the page with it)."""
    numbers = NUMBERS[language]
    plain = text.strip().rstrip("%").replace(numbers.thousands, "").replace(numbers.decimal, ".")
    return float(plain)


def duration(seconds: float, language: Language) -> str:
    if seconds < 60:
        return f"{seconds:.0f} giây" if language == "vi" else f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if language == "vi":
        return f"{hours} giờ {minutes:02d} phút" if hours else f"{minutes} phút"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def when(moment: datetime, language: Language, with_date: bool = True) -> str:
    clock = f"{moment:%H:%M}"
    if not with_date:
        return clock
    day = f"{moment:%d/%m/%Y}" if language == "vi" else f"{moment:%Y-%m-%d}"
    return f"{clock} {day}" if language == "vi" else f"{day} {clock}"


def span(start: datetime, end: datetime, language: Language) -> str:
    """[start, end) as people say it; an end at midnight is the day before's 24:00."""
    same_day = (end - timedelta(seconds=1)).date() == start.date()
    return f"{when(start, language)} – {when(end, language, with_date=not same_day)}"
