"""Times as the city reads them: epoch milliseconds in, Asia/Ho_Chi_Minh datetimes out."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def local_time(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=CITY_TZ)


def aligned_start(epoch_ms: int, size_ms: int) -> int:
    """Start of the epoch-aligned window of `size_ms` holding `epoch_ms`."""
    return epoch_ms - epoch_ms % size_ms


def local_day_bounds(epoch_ms: int) -> tuple[date, int, int]:
    """(local day, its start, its end) in Asia/Ho_Chi_Minh, as epoch ms."""
    day = local_time(epoch_ms).date()
    start = datetime(day.year, day.month, day.day, tzinfo=CITY_TZ)
    return day, int(start.timestamp() * 1000), int(start.timestamp() * 1000) + 86_400_000
