"""City time for the simulator: a start instant and a speed-up over wall-clock time.

The clock is pure arithmetic; the producer measures wall time and asks the clock which city
time that is (and the reverse, to know how long to sleep). With speed-up 60 a 60 s run covers
an hour of city time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from simulator.exceptions import SimulatorError

# The producer emits the city's events one slice at a time; a slice lasts about this much
# wall time, so pacing is smooth without re-planning 196 cameras thousands of times a second.
SLICE_WALL_MS = 100
MIN_SLICE_MS = 1_000
MAX_SLICE_MS = 60_000


@dataclass(frozen=True)
class SimClock:
    start: datetime
    speedup: float  # simulated seconds per wall second

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise SimulatorError(f"clock start {self.start.isoformat()} has no UTC offset")
        if not self.speedup > 0:
            raise SimulatorError(f"speed-up must be positive, got {self.speedup}")

    @property
    def start_ms(self) -> int:
        return round(self.start.timestamp() * 1000)

    def city_ms(self, wall_elapsed_s: float) -> int:
        """The city time reached `wall_elapsed_s` wall seconds after the start."""
        return self.start_ms + self.span_ms(wall_elapsed_s)

    def wall_s(self, city_ms: int) -> float:
        """Wall seconds after the start at which the city reaches `city_ms`."""
        return (city_ms - self.start_ms) / 1000 / self.speedup

    def span_ms(self, wall_s: float) -> int:
        """City milliseconds that pass in `wall_s` wall seconds."""
        return round(wall_s * self.speedup * 1000)

    @property
    def slice_ms(self) -> int:
        """City time produced per step: about SLICE_WALL_MS of wall time, within 1 s–1 min."""
        return int(min(MAX_SLICE_MS, max(MIN_SLICE_MS, self.speedup * SLICE_WALL_MS)))


def parse_start(text: str) -> datetime:
    """An RFC 3339 time with an explicit offset (`2024-09-14T07:00:00+07:00`, `...Z`)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SimulatorError(f"--start: {text!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise SimulatorError(f"--start: {text!r} needs an offset such as +07:00 or Z")
    return parsed


def city_now(tz: tzinfo) -> datetime:
    """Now, in the city's time zone (the default start)."""
    return datetime.now(tz)
