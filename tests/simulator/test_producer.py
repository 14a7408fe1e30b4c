"""The producer's loop, driven by a fake clock and a list sink (no Kafka)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from random import Random

import pytest

from city.profile import CityProfile, load_city_profile
from simulator.clock import SimClock
from simulator.producer import Progress, run
from simulator.sources import Load, SimEvent
from simulator.traffic import CameraTraffic

START = datetime.fromisoformat("2024-09-16T07:30:00+07:00")


class WallClock:
    """Wall time that moves only when the loop sleeps or a sink spends time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


class ListSink:
    def __init__(self, wall: WallClock, cost_s: float = 0.0, interrupt_after: int = 0) -> None:
        self.events: list[SimEvent] = []
        self.flushes = 0
        self._wall, self._cost, self._interrupt_after = wall, cost_s, interrupt_after

    def send(self, event: SimEvent) -> None:
        self.events.append(event)
        self._wall.now += self._cost
        if self._interrupt_after and len(self.events) == self._interrupt_after:
            raise KeyboardInterrupt

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass


class Ticker:
    """A second source (as payments will be): one event every 10 city seconds."""

    topic = "payments.terminal-counts"

    def natural_load(self, start_ms: int, end_ms: int) -> Load:
        return Load(scaled=0.1, fixed=0.0)

    def events(self, start_ms: int, end_ms: int, rate_scale: float) -> Iterator[SimEvent]:
        first = -(-start_ms // 10_000) * 10_000
        for ts in range(first, end_ms, 10_000):
            yield SimEvent(self.topic, "T-1", {"event_id": str(ts)}, "terminal-count", ts)


@pytest.fixture(scope="module")
def city() -> CityProfile:
    return load_city_profile()


def test_paced_run_covers_duration_times_speedup_in_step_with_the_wall(city: CityProfile) -> None:
    wall, clock = WallClock(), SimClock(START, speedup=60)
    sink = ListSink(wall)
    reports: list[Progress] = []
    summary = run(
        [CameraTraffic(city, Random(1))], clock, sink, duration_s=10, rate_scale=0.1,
        progress=reports.append, monotonic=wall.monotonic, sleep=wall.sleep,
    )  # fmt: skip
    assert summary.city_end_ms == clock.start_ms + 600_000
    assert wall.slept == pytest.approx(10.0)
    assert summary.sent == len(sink.events) > 0
    assert sink.flushes == 1
    assert summary.first_event_ms is not None and summary.last_event_ms is not None
    assert clock.start_ms <= summary.first_event_ms <= summary.last_event_ms < summary.city_end_ms
    assert sum(summary.by_kind.values()) == summary.sent
    assert len(reports) >= 9
    assert all(r.behind_s == 0 for r in reports)


def test_max_events_stops_exactly(city: CityProfile) -> None:
    wall = WallClock()
    sink = ListSink(wall)
    summary = run(
        [CameraTraffic(city, Random(1))], SimClock(START, 60), sink, duration_s=60,
        pace=False, max_events=5_000, monotonic=wall.monotonic, sleep=wall.sleep,
    )  # fmt: skip
    assert summary.sent == len(sink.events) == 5_000
    assert wall.slept == 0
    assert summary.as_dict(city.tz)["events"] == 5_000


def test_unpaced_run_stops_after_duration_wall_seconds(city: CityProfile) -> None:
    wall = WallClock()
    sink = ListSink(wall, cost_s=0.001)
    summary = run(
        [CameraTraffic(city, Random(1))], SimClock(START, 60), sink, duration_s=5,
        pace=False, monotonic=wall.monotonic, sleep=wall.sleep,
    )  # fmt: skip
    assert 5_000 <= summary.sent <= 5_000 + 2_048
    assert wall.slept == 0


def test_sources_are_merged_in_time_order(city: CityProfile) -> None:
    wall = WallClock()
    sink = ListSink(wall)
    summary = run(
        [CameraTraffic(city, Random(1)), Ticker()], SimClock(START, 60), sink, duration_s=2,
        rate_scale=0.05, monotonic=wall.monotonic, sleep=wall.sleep,
    )  # fmt: skip
    times = [e.ts_ms for e in sink.events]
    assert times == sorted(times)
    assert summary.by_topic["payments.terminal-counts"] == 12
    assert summary.by_kind["terminal-count"] == 12


def test_ctrl_c_stops_cleanly_and_flushes(city: CityProfile) -> None:
    wall = WallClock()
    sink = ListSink(wall, interrupt_after=100)
    summary = run(
        [CameraTraffic(city, Random(1))], SimClock(START, 60), sink, duration_s=60,
        monotonic=wall.monotonic, sleep=wall.sleep,
    )  # fmt: skip
    assert summary.interrupted
    assert sink.flushes == 1
    assert summary.sent == 99  # the interrupted send did not complete
