"""Events from the far future: they would move stream time past every open window for good.

Stream time only advances by events within `max_clock_skew_s` of the wall clock; an event
beyond it is a dead letter whose reason names its time field. This is the one wall-clock
judgement in the windows, and it only ever rejects times no real producer sends.
"""

from __future__ import annotations

from schemas.exceptions import InvalidEvent


def reject_far_future(field: str, event_time_ms: int, latest_ms: int) -> None:
    """InvalidEvent naming `field` when the event time is after `latest_ms` (now + skew)."""
    if event_time_ms > latest_ms:
        raise InvalidEvent(f"{field}: further ahead of the wall clock than VTOPS_MAX_CLOCK_SKEW_S")
