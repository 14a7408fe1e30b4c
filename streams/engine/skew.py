"""Events from the far future: they would move stream time past every open window for good.

Stream time only advances by events within `max_clock_skew_s` of the wall clock; an event
beyond it is a dead letter whose reason names its time field. This is the one wall-clock
judgement in the windows, and it only ever rejects times no real producer sends.
"""

from __future__ import annotations

from typing import Any

from schemas.exceptions import InvalidEvent
from streams.engine.definition import DomainStream


def reject_far_future(stream: DomainStream[Any, Any], event: Any, latest_ms: int) -> None:
    """InvalidEvent naming the stream's time field when the event's time is after `latest_ms`
    (now + skew). Every event kind is judged, windowed or not (contract v1.2, section 5)."""
    field = stream.event_time_field
    if getattr(event, field) > latest_ms:
        raise InvalidEvent(f"{field}: further ahead of the wall clock than VTOPS_MAX_CLOCK_SKEW_S")
