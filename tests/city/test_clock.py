"""LocalDays remembers the last local day; its bounds must be local_day_bounds' for any order
of instants, across the clock changes of a zone that has them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from city.clock import LocalDays, local_day_bounds

LISBON = ZoneInfo("Europe/Lisbon")


def _ms(year: int, month: int, day: int, hour: int) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp() * 1000)


def test_bounds_equal_local_day_bounds_in_any_order_across_clock_changes() -> None:
    # Around Lisbon's spring (23-hour day) and autumn (25-hour day) changes of 2025.
    instants = [_ms(2025, 3, 29, 22) + step * 7 * 60_000 for step in range(1_000)] + [
        _ms(2025, 10, 25, 22) + step * 7 * 60_000 for step in range(1_000)
    ]
    days = LocalDays(LISBON)
    for epoch_ms in instants + random.Random(20).sample(instants, len(instants)):
        assert days.bounds(epoch_ms) == local_day_bounds(epoch_ms, LISBON)


def test_an_instant_at_midnight_opens_the_next_day() -> None:
    days = LocalDays(LISBON)
    _, start, end = days.bounds(_ms(2025, 3, 30, 12))
    assert end - start == 23 * 3_600_000
    assert days.bounds(end)[1] == end
    assert days.bounds(end - 1)[2] == end
