"""Times as the city reads them: epoch milliseconds in, datetimes in the city's zone out.

The zone is the city profile's (`CityProfile.tz`), the one source of "city time": callers pass
it, so a city in another zone gets its own days and hours.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def local_time(epoch_ms: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=tz)


def aligned_start(epoch_ms: int, size_ms: int) -> int:
    """Start of the epoch-aligned window of `size_ms` holding `epoch_ms`."""
    return epoch_ms - epoch_ms % size_ms


def local_day_bounds(epoch_ms: int, tz: tzinfo) -> tuple[date, int, int]:
    """(local day, its start, its end) in `tz`, as epoch ms. A day is not always 24 hours:
    where clocks change it runs from one local midnight to the next (23 or 25 hours)."""
    day = local_time(epoch_ms, tz).date()
    return day, _midnight_ms(day, tz), _midnight_ms(day + timedelta(days=1), tz)


def _midnight_ms(day: date, tz: tzinfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


class LocalDays:
    """`local_day_bounds` in one zone, remembering the last day: a stream's events come nearly
    in time order, so most fall in the day of the one before, and the zone's lookups cost
    ~10 µs an event (issue 20). Exact: the days of a zone do not overlap."""

    def __init__(self, tz: tzinfo) -> None:
        self._tz = tz
        self._last: tuple[date, int, int] | None = None

    def bounds(self, epoch_ms: int) -> tuple[date, int, int]:
        last = self._last
        if last is None or not last[1] <= epoch_ms < last[2]:
            last = self._last = local_day_bounds(epoch_ms, self._tz)
        return last
