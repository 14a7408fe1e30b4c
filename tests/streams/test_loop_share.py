"""A backlog must not hold the worker's event loop: /healthz shares it with the fold."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import cast

from aiokafka import TopicPartition

from city.event_loop import HOLD_S
from streams.engine.service import StreamEngine
from streams.engine.state_store import StateStore
from tests.streams.test_engine import (  # noqa: F401
    Engine,
    Recording,
    camera_stage,
    engine,
    passages,
    record,
)


def test_a_large_poll_gives_the_loop_back_while_it_is_folded(engine: Engine) -> None:  # noqa: F811
    topic = f"t{uuid.uuid4().hex[:8]}"
    stage = camera_stage(engine, topic, Recording("traffic_flow_1m"))
    worker = StreamEngine(
        cast(StateStore, None),
        {},
        group_id="test-loop-share",
        checkpoint_interval_s=1.0,
        max_pending_events=1000,
        stall_timeout_s=60.0,
        exclusive=False,
    )
    worker.register([stage])
    tp = TopicPartition(topic, 0)
    worker.assigned = {tp}
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
        folded = await worker._fold({tp: batch})
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
