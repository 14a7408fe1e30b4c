"""Instants as engineers type them on the command line."""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum

from vtops.replay.exceptions import ReplayError

# How every replay command's help says a time without an offset is read.
CITY_TIME_HELP = "a time without an offset is city time (the city profile's zone), not UTC"


class Clock(StrEnum):
    """Which time a replay command's times are read in (vtops/replay/event_times.py)."""

    event = "event"  # the event's own time, as windows are counted
    kafka = "kafka"  # the message timestamp, as Kafka's tools count


def parse_instant(option: str, text: str, tz: tzinfo) -> datetime:
    """An ISO 8601 instant, e.g. 2026-11-30T08:00:00+07:00; without an offset it is city time
    (`tz`, the city profile's zone), the clock the operations center reads."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ReplayError(
            f"{option}: not an ISO 8601 time (e.g. 2026-11-30T08:00:00+07:00): {text!r}"
        ) from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=tz)


def epoch_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)
