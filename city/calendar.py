"""Kinds of day in the city: what a traffic baseline is conditioned on.

Traffic on a Saturday differs from a weekday, and Sundays look like public holidays (shops
open, offices closed, visitors on the beach roads), so baselines keep three kinds of day.
Public holidays follow the Labour Code (art. 112): New Year, Tết (lunar, so listed per year as
the government announced or, for later years, as the lunar calendar gives it), the Hùng Kings'
day, 30/4, 1/5 and 2/9 with the day beside it.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

DayType = Literal["weekday", "saturday", "sunday_holiday"]
DAY_TYPES: tuple[DayType, ...] = ("weekday", "saturday", "sunday_holiday")

_FIXED = ((1, 1), (4, 30), (5, 1), (9, 1), (9, 2))
# (first day, last day) of the Tết break, and the Hùng Kings' day (10th of the 3rd lunar month).
_TET = {
    2024: (date(2024, 2, 8), date(2024, 2, 14)),
    2025: (date(2025, 1, 25), date(2025, 2, 2)),
    2026: (date(2026, 2, 14), date(2026, 2, 22)),
    2027: (date(2027, 2, 4), date(2027, 2, 10)),
    2028: (date(2028, 1, 24), date(2028, 1, 30)),
}
_HUNG_KINGS = {
    2024: date(2024, 4, 18),
    2025: date(2025, 4, 7),
    2026: date(2026, 4, 26),
    2027: date(2027, 4, 16),
    2028: date(2028, 4, 4),
}


def is_public_holiday(day: date) -> bool:
    if (day.month, day.day) in _FIXED or _HUNG_KINGS.get(day.year) == day:
        return True
    tet = _TET.get(day.year)
    return tet is not None and tet[0] <= day <= tet[1]


def day_type(day: date) -> DayType:
    if day.weekday() == 6 or is_public_holiday(day):
        return "sunday_holiday"
    return "saturday" if day.weekday() == 5 else "weekday"
