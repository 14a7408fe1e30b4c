"""Field types every input event shares (contract section 4, common rules)."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints

# Epoch milliseconds from 2000-01-01 to 2100-01-01: anything outside is a mistake, not a time.
_EARLIEST_MS = 946_684_800_000
_LATEST_MS = 4_102_444_800_000
# RFC 3339's date-time (section 5.6), with a space for the T as its note allows, the offset
# left optional here only to say so when it is missing. datetime.fromisoformat alone takes
# most of ISO 8601: week and ordinal dates, the basic format, +0700, times without seconds.
_RFC_3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:(?P<second>[0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def to_epoch_ms(value: Any) -> int:
    """An RFC 3339 string with an explicit offset, or integer epoch milliseconds, as epoch ms.

    JSON booleans are not times even though Python treats them as integers.
    """
    if isinstance(value, str):
        millis = _common_time_ms(value)
        if millis is not None:
            return millis
    return _parsed_epoch_ms(value)


def _common_time_ms(value: str) -> int | None:
    """`value` in epoch ms when it has the shape every producer of the city sends,
    `YYYY-MM-DDTHH:MM:SS.mmm` and an offset; None for any other, which the full parser judges.

    The full parser costs ~1.5 µs a time, a third of a camera event's fold (issue 20); its
    answer for the minute is remembered, and the seconds and milliseconds are added to it.
    The result is the full parser's: `timestamp() * 1000` is exact to the millisecond here.
    """
    if len(value) < 24 or value[19] != "." or not value.isascii():
        return None
    # Seconds and milliseconds as one number, SSmmm: fewer strings made per event (issue 20).
    second_ms = value[17:19] + value[20:23]
    if not second_ms.isdigit() or second_ms >= "60000":  # second 60: a leap second
        return None
    # A fourth fraction digit, or no offset, makes the minute's time one it refuses.
    minute_ms = _minute_ms(value[:17] + value[23:])
    if minute_ms is None:
        return None
    return minute_ms + int(second_ms)


@lru_cache(maxsize=4096)
def _minute_ms(minute: str) -> int | None:
    """The full parser's epoch ms of `minute` (`YYYY-MM-DDTHH:MM:` and what followed the
    milliseconds: an offset) at second 0; None where it refuses it (the full parser then says
    why, for the whole value). One argument: the cache's key is the string itself."""
    try:
        return _parsed_epoch_ms(f"{minute[:17]}00{minute[17:]}")
    except ValueError:
        return None


def _parsed_epoch_ms(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int):
        millis = value
    elif isinstance(value, str):
        if "T" not in value and "t" not in value and " " not in value:
            raise ValueError("a time needs a date and a clock time")
        match = _RFC_3339.fullmatch(value)
        if match is None:
            raise ValueError("not an RFC 3339 time")
        leap = match.group("second") == "60"
        if leap:  # RFC 3339 allows it; Python's datetime does not
            value = value[: match.start("second")] + "59" + value[match.end("second") :]
        try:
            parsed = datetime.fromisoformat(value.upper())
        except ValueError:  # a month, day or hour out of range
            raise ValueError("not an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise ValueError("a time needs an explicit offset such as +07:00 or Z")
        millis = round(parsed.timestamp() * 1000)
        if leap:
            if millis // 1000 % 86_400 != 86_399:
                raise ValueError("a leap second is 23:59:60 UTC")
            # The leap second's instants, as its minute's last millisecond: the same minute's
            # and the same day's window, as the clocks that sent it meant.
            millis = millis - millis % 1000 + 999
    else:
        raise ValueError(
            f"a time must be an RFC 3339 string or epoch milliseconds, not {type(value).__name__}"
        )
    if not _EARLIEST_MS <= millis < _LATEST_MS:
        raise ValueError("time out of range (years 2000-2099)")
    return millis


EpochMs = Annotated[int, BeforeValidator(to_epoch_ms)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Id64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
