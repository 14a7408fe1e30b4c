"""The span a report covers, in city time, and how its numbers are grouped over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

from vtops.report.exceptions import ReportPeriodError

Grain = Literal["hour", "day"]

DEFAULT_SPAN = timedelta(days=7)
# Up to two days a trend has a point per hour; beyond, per city day.
HOURLY_UP_TO = timedelta(days=2)


def parse_time(option: str, text: str, tz: tzinfo) -> datetime:
    """An ISO 8601 date or time; without an offset it is city time (a date: its midnight)."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ReportPeriodError(
            f"{option}: not an ISO 8601 date or time (e.g. 2026-12-01 or "
            f"2026-12-01T08:00:00+07:00): {text!r}"
        ) from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=tz)


@dataclass(frozen=True)
class Period:
    """[start, end) of a city whose clock is `tz`."""

    start: datetime
    end: datetime
    tz: tzinfo

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ReportPeriodError("a report period needs times with a UTC offset")
        if self.end <= self.start:
            raise ReportPeriodError(
                f"--to ({self.end.isoformat()}) must be after --from ({self.start.isoformat()})"
            )
        object.__setattr__(self, "start", self.start.astimezone(self.tz))
        object.__setattr__(self, "end", self.end.astimezone(self.tz))

    @classmethod
    def of(
        cls, start: str | None, end: str | None, tz: tzinfo, now: datetime | None = None
    ) -> Period:
        """From the command line's --from/--to; either missing: the 7 days before the other
        (or before now, to the minute)."""
        until = (
            parse_time("--to", end, tz)
            if end
            else (now or datetime.now(tz)).replace(second=0, microsecond=0)
        )
        since = parse_time("--from", start, tz) if start else until - DEFAULT_SPAN
        if start and not end:
            until = since + DEFAULT_SPAN
        return cls(since, until, tz)

    @property
    def grain(self) -> Grain:
        return "hour" if self.end - self.start <= HOURLY_UP_TO else "day"

    @property
    def last_instant(self) -> datetime:
        """The last whole second inside: Grafana's time filters include their end."""
        return self.end - timedelta(seconds=1)

    @property
    def days(self) -> list[date]:
        """The city days the period touches."""
        first, last = self.start.date(), self.last_instant.date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    @property
    def single_day(self) -> bool:
        return len(self.days) == 1

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), self.tz)

    def steps(self, first: datetime, step: timedelta) -> list[datetime]:
        """`first`, `first + step`, … before the end: days by the city's calendar (a day with a
        clock change has 23 or 25 hours), shorter steps by the clock."""
        found, at = [], first
        while at < self.end:
            found.append(at)
            if step >= timedelta(days=1):
                at = self.midnight(at.date() + timedelta(days=step.days))
            else:
                at = (at.astimezone(UTC) + step).astimezone(self.tz)
        return found

    def buckets(self) -> list[datetime]:
        """Start of every hour or city day of the trends, in order."""
        if self.grain == "hour":
            hour = self.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            return self.steps(hour.astimezone(self.tz), timedelta(hours=1))
        return self.steps(self.midnight(self.start.date()), timedelta(days=1))


def utc_midnight(day: date) -> datetime:
    """A day as Grafana's date macros read it (the UTC date of the instant they are given)."""
    return datetime.combine(day, time(), UTC)
