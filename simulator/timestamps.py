"""Contract times as producers write them: RFC 3339 with the city's offset, in UTC, or epoch ms.

Every encoding the contract allows occurs, so the pipeline's decoding of each is exercised;
the UTC ones make local-day boundaries fall where the text does not show them.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from random import Random

EPOCH_MS_SHARE = 0.1
UTC_SHARE = 0.1


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def event_time(ms: int, tz: tzinfo, rng: Random) -> str | int:
    """`ms` in one of the contract's encodings, drawn with one uniform number."""
    u = rng.random()
    if u < EPOCH_MS_SHARE:
        return ms
    zone = UTC if u < EPOCH_MS_SHARE + UTC_SHARE else tz
    text = datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
