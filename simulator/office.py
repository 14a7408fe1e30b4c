"""The one-stop office's calendar: opening hours, working days and legal deadlines.

Offices open 7:30–11:30 and 13:30–17:00 on weekdays and 7:30–11:30 on Saturday mornings;
deadlines count working days (Monday to Friday) and fall at closing time. Times are epoch
milliseconds in, epoch milliseconds out; the city's zone turns them into local clock times.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from simulator.timestamps import epoch_ms

DayKind = Literal["weekday", "friday", "saturday", "sunday"]

MORNING = (time(7, 30), time(11, 30))
AFTERNOON = (time(13, 30), time(17, 0))
OPENING_HOURS: dict[int, tuple[tuple[time, time], ...]] = {
    **dict.fromkeys(range(5), (MORNING, AFTERNOON)),  # Monday to Friday
    5: (MORNING,),  # Saturday morning
    6: (),
}
CLOSING = time(17, 0)
# Offices open at least once a week, so a search for the next open minute ends within it.
_MAX_DAYS_AHEAD = 8


def day_kind(local: datetime, holiday: bool = False) -> DayKind:
    """How busy the office is: a holiday is a Sunday; Friday has no paper dossiers (pilot)."""
    weekday = local.weekday()
    if holiday or weekday == 6:
        return "sunday"
    return "saturday" if weekday == 5 else "friday" if weekday == 4 else "weekday"


def is_open(local: datetime) -> bool:
    clock = local.time()
    return any(opens <= clock < closes for opens, closes in OPENING_HOURS[local.weekday()])


def next_open(ms: int, tz: tzinfo) -> int:
    """The first instant at or after `ms` when the office is open."""
    local = datetime.fromtimestamp(ms / 1000, tz)
    for ahead in range(_MAX_DAYS_AHEAD):
        day = local.date() + timedelta(days=ahead)
        for opens, closes in OPENING_HOURS[day.weekday()]:
            start = datetime.combine(day, opens, tz)
            end = datetime.combine(day, closes, tz)
            if local < end:
                return max(ms, epoch_ms(start))
    raise AssertionError("no opening hours in a week")  # the table above always has some


def add_working_days(day: date, days: int) -> date:
    """The `days`-th working day (Monday to Friday) after `day`."""
    while days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def deadline(received_ms: int, legal_days: int, tz: tzinfo) -> int:
    """The legal deadline of a dossier received at `received_ms`: closing time on the
    `legal_days`-th working day after the day of receipt."""
    received = datetime.fromtimestamp(received_ms / 1000, tz).date()
    return epoch_ms(datetime.combine(add_working_days(received, legal_days), CLOSING, tz))
