"""Issue 16, 6: one producer's fast clock (a camera, a terminal, a dossier) must not make its
partition-mates late."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from city.profile import load_city_profile
from city.settings import KafkaSettings
from sinks.base import BatchSink, Row
from sinks.clickhouse.migrations import TABLES
from streams.app import aiokafka_config
from streams.engine.checkpoint import Cut, StageSinks
from streams.engine.definition import DomainStream, Records
from streams.engine.lead import SILENT_AFTER, Leaders
from streams.engine.offline import NothingSaved, Unwritten, discarding_sinks
from streams.engine.route_stage import RouteStage
from streams.engine.window_stage import WindowStage, fold_event
from streams.payments import CashlessPayments
from streams.portal import PortalKpis
from streams.traffic.anomaly.baselines import NO_BASELINES
from streams.traffic.flow import TrafficFlow
from tests.factories import MINUTE_MS, T0, passage
from tests.factories_payments import tally
from tests.factories_portal import step
from tests.streams.test_engine import record

GRACE_S = 120
HONEST = [f"VT-CAM-{n:03d}" for n in range(1, 31)]
FAST = "VT-CAM-099"  # its clock runs ten minutes fast


def test_a_camera_ten_minutes_fast_leaves_its_partition_mates_on_time() -> None:
    """Stream time was the largest event time of the partition: the fast camera's first
    passage made every other camera's minute late against the 120 s grace."""
    flow = TrafficFlow(load_city_profile(), GRACE_S, NO_BASELINES)
    state, records, offset = flow.new_state(), Records(), 0
    for second in range(0, 5 * 60, 10):  # five minutes of traffic, every camera every 10 s
        for camera in [*HONEST, FAST]:
            ts = T0 + second * 1000 + (10 * MINUTE_MS if camera == FAST else 0)
            event = passage(f"{camera}-{second}", camera, ts)
            fold_event(flow, state, offset, orjson.dumps(event), records, key=camera.encode())
            offset += 1
    assert state.counters.late == 0
    assert state.counters.accepted == offset  # the fast camera's passages count too
    assert state.counters.ahead == 30  # each of them, reported
    # The honest cameras' latest time (4:50) plus half the grace.
    assert state.stream_time_ms == T0 + 290_000 + GRACE_S * 1000 // 2
    honest_minutes = {w.start_ms for w in state.open_windows() if w.group[0] != FAST}
    assert honest_minutes == {T0 + m * MINUTE_MS for m in range(5)}


def test_two_producers_agreeing_move_stream_time_at_once() -> None:
    """A partition catching up after an outage: every camera jumps ahead together."""
    leaders = Leaders()
    leaders.see("a", T0)
    leaders.see("b", T0)
    leaders.see("a", T0 + 3_600_000)
    assert leaders.bound(60_000) == T0 + 60_000
    leaders.see("b", T0 + 3_600_000)
    assert leaders.bound(60_000) == T0 + 3_600_000
    assert Leaders.from_state(leaders.to_state()) == leaders


def test_a_leader_alone_for_long_is_followed_the_others_went_silent() -> None:
    """Every other camera of the partition dark: its ticks must go on, or nothing is raised."""
    leaders = Leaders()
    leaders.see("dark", T0)
    leaders.see("alive", T0)
    for n in range(1, SILENT_AFTER + 2):  # the first makes it the leader, then it is alone
        leaders.see("alive", T0 + n * 10_000)
        assert leaders.bound(60_000) == min(T0 + n * 10_000, T0 + 60_000)
    leaders.see("alive", T0 + 3_600_000)
    assert leaders.bound(60_000) == T0 + 3_600_000


class Forwards(BatchSink):
    """The re-key topic, as the window stage will read it."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[ConsumerRecord] = []

    async def write(self, batch: Sequence[Row]) -> None:
        for row in batch:
            value = row["value"]
            offset = len(self.records)
            self.records.append(
                ConsumerRecord(
                    "by-group", 0, offset, 0, 0, row["key"], value, None, 0, len(value),
                    row["headers"],
                )
            )  # fmt: skip


def route_and_window(stream: DomainStream[Any, Any], events: list[dict[str, Any]]) -> Any:
    """The events on one input partition, through the router and the window stage."""
    forwards = Forwards()
    unwritten = Unwritten()
    sinks = StageSinks(dict.fromkeys(TABLES, unwritten), forwards, unwritten)
    router = RouteStage(
        stream, "source", "by-group", sinks,
        NothingSaved(), max_clock_skew_s=3600, idle_partition_s=3600,
        highwater=lambda _topic, _partition: None, partitions_of=lambda _topic: 1,
    )  # fmt: skip
    windows = WindowStage(
        stream, "by-group", discarding_sinks(), NothingSaved(),
        aiokafka_config(KafkaSettings()), max_clock_skew_s=3600,
        highwater=lambda _topic, _partition: None,
    )  # fmt: skip

    async def run() -> None:
        await router.assign(0)
        await windows.assign(0)
        router.fold(0, [record("source", n, e) for n, e in enumerate(events)])
        cut = Cut()
        router.cut(cut, 0.0)
        for sink, rows in cut.ordered():
            await sink.write(rows)
        windows.fold(0, forwards.records)

    asyncio.run(run())
    (routed,) = router.progress()
    return routed.counted.get("ahead", 0), windows.partition_state(0).counters


def test_a_terminal_half_an_hour_fast_leaves_its_partition_mates_on_time() -> None:
    """Issue 16, 6, for the re-keyed streams: the router moved its input partition's stream
    time by plain maximum, so a terminal 30 minutes fast made the other terminals' tallies of
    the hour late against the 900 s grace."""
    honest = [f"VT-T-{n:05d}" for n in range(1, 6)]
    events = []
    for minute in range(0, 60, 5):
        for terminal in [*honest, "VT-T-09999"]:
            fast = 30 if terminal == "VT-T-09999" else 0
            at = T0 + (minute + fast) * MINUTE_MS
            events.append(tally(f"{terminal}-{minute}", terminal, at, minutes=5))
    ahead, counters = route_and_window(CashlessPayments(load_city_profile(), 900), events)
    assert counters.late == 0
    assert counters.accepted == len(events)  # the fast terminal's tallies count too
    assert ahead > 0


def test_a_dossier_whose_steps_run_days_ahead_leaves_the_others_on_time() -> None:
    """The same for dossier steps: the 2-day grace, bounded at one day's lead."""
    events = []
    for hour in range(0, 48, 2):
        for n in range(4):
            events.append(step(f"d{n}-{hour}", f"D-{n}", T0 + hour * 3_600_000, "accepted"))
        ahead_ts = T0 + (hour + 24 * 4) * 3_600_000
        events.append(step(f"fast-{hour}", "D-FAST", ahead_ts, "accepted"))
    ahead, counters = route_and_window(PortalKpis(load_city_profile(), 172_800), events)
    assert counters.late == 0
    assert counters.accepted == len(events)
    assert ahead > 0
