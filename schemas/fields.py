"""Field types every input event shares (contract section 4, common rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints

# Epoch milliseconds from 2000-01-01 to 2100-01-01: anything outside is a mistake, not a time.
_EARLIEST_MS = 946_684_800_000
_LATEST_MS = 4_102_444_800_000


def to_epoch_ms(value: Any) -> int:
    """An RFC 3339 string with an explicit offset, or integer epoch milliseconds, as epoch ms.

    JSON booleans are not times even though Python treats them as integers.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int):
        millis = value
    elif isinstance(value, str):
        if "T" not in value and "t" not in value and " " not in value:
            raise ValueError("a time needs a date and a clock time")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise ValueError("a time needs an explicit offset such as +07:00 or Z")
        millis = round(parsed.timestamp() * 1000)
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
