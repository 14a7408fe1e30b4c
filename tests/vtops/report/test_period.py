"""Which hours and days a report covers, and how its trends are grouped."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from vtops.report.exceptions import ReportPeriodError
from vtops.report.period import Period

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 4, 14, 37, 12, tzinfo=CITY_TZ)


def test_default_is_the_seven_days_before_now_to_the_minute() -> None:
    period = Period.of(None, None, CITY_TZ, now=NOW)
    assert period.end == NOW.replace(second=0)
    assert period.start == period.end - timedelta(days=7)
    assert period.grain == "day" and len(period.days) == 8


def test_dates_are_city_midnights_and_an_end_at_midnight_is_not_a_day_of_it() -> None:
    period = Period.of("2026-12-01", "2026-12-02", CITY_TZ)
    assert period.start == datetime(2026, 12, 1, tzinfo=CITY_TZ)
    assert period.days == [date(2026, 12, 1)] and period.single_day
    assert period.grain == "hour"
    assert len(period.buckets()) == 24


def test_a_from_alone_gives_seven_days_and_offsets_are_honoured() -> None:
    period = Period.of("2026-12-01T08:00:00+00:00", None, CITY_TZ)
    assert period.start.tzinfo == CITY_TZ and period.start.hour == 15
    assert period.end - period.start == timedelta(days=7)
    buckets = period.buckets()
    assert buckets[0] == datetime(2026, 12, 1, tzinfo=CITY_TZ)  # city days, not UTC days
    assert len(buckets) == 8


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [("yesterday", None, "--from"), ("2026-12-02", "2026-12-01", "must be after")],
)
def test_bad_periods_name_the_option(start: str, end: str | None, says: str) -> None:
    with pytest.raises(ReportPeriodError, match=says):
        Period.of(start, end, CITY_TZ, now=NOW)
