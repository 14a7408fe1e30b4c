"""The runner folds a live poll in slices: the event loop is shared with /healthz during a
backlog, and a partition revoked in the middle of a poll drops the rest of its records."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiokafka import TopicPartition

from city.event_loop import HOLD_S
from city.profile import load_city_profile
from streams.engine.offline import NothingSaved, discarding_sinks
from streams.engine.runner import FOLD_SLICE, StageRunner
from streams.engine.window_stage import WindowStage
from streams.traffic.anomaly.baselines import NO_BASELINES
from streams.traffic.flow import TrafficFlow
from tests.streams.test_engine import passages, record


def camera_stage(topic: str) -> WindowStage[Any, Any]:
    """A camera stream's window stage with nothing saved and nothing written."""
    return WindowStage(
        TrafficFlow(load_city_profile(), 120, NO_BASELINES),
        topic,
        discarding_sinks(),
        NothingSaved(),
        {},
        max_clock_skew_s=3600,
        highwater=lambda _topic, _partition: None,
    )


def test_a_large_poll_gives_the_loop_back_while_it_is_folded() -> None:
    topic = f"t{uuid.uuid4().hex[:8]}"
    stage = camera_stage(topic)
    runner = StageRunner([stage])
    tp = TopicPartition(topic, 0)
    # Four polls' worth of a backlog: long enough to need sharing on a fast machine too.
    batch = [record(topic, n, event) for n, event in enumerate(passages(40_000))]

    async def fold_beside_a_probe() -> tuple[int, float, int]:
        await stage.assign(0)
        gaps: list[float] = []
        folding = True

        async def probe() -> None:
            last = time.perf_counter()
            while folding:
                await asyncio.sleep(0)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0)
        started = time.perf_counter()
        folded = await runner.fold_poll({tp: batch}, {tp})
        took = time.perf_counter() - started
        folding = False
        await prober
        return folded, took, len(gaps)

    folded, took, probe_turns = asyncio.run(fold_beside_a_probe())
    assert folded == 40_000
    assert stage.partition_state(0).counters.accepted == 40_000
    # The probe ran between slices: the loop was never held for the whole poll. Counted in
    # turns, not by its longest wait: a collector pause or a busy neighbour on CI stretched
    # one wait to half the fold once (0.22 of 0.43 s) while the fold still gave way.
    assert took > 2 * HOLD_S, f"a fold of {took:.3f} s is too fast to tell: fold more"
    assert probe_turns >= 3, f"the probe ran {probe_turns} times in a fold of {took:.3f} s"


def test_a_partition_revoked_during_a_poll_drops_the_rest_of_its_records() -> None:
    """A rebalance runs while the fold gives the loop back: the revoked partition's records
    after that point are not folded (its next owner reads them), the others' all are."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    stage = camera_stage(topic)
    runner = StageRunner([stage])
    revoked, kept = TopicPartition(topic, 0), TopicPartition(topic, 1)
    batches = {
        tp: [record(topic, n, e, partition=tp.partition) for n, e in enumerate(passages(40_000))]
        for tp in (revoked, kept)
    }
    held = {revoked, kept}

    async def fold_through_a_revoke() -> int:
        for tp in held:
            await stage.assign(tp.partition)

        async def rebalance() -> None:  # runs at the fold's first turn
            held.discard(revoked)  # the stage keeps its state: only the runner can skip

        rebalancing = asyncio.create_task(rebalance())
        folded = await runner.fold_poll(batches, held)
        await rebalancing
        return folded

    assert asyncio.run(fold_through_a_revoke()) == 80_000
    folded_before = stage.partition_state(0).counters.accepted
    assert 0 < folded_before < 40_000
    assert folded_before % FOLD_SLICE == 0  # whole slices, up to the turn the revoke came in
    assert stage.partition_state(1).counters.accepted == 40_000
