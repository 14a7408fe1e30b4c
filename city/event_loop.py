"""Sharing the worker's one event loop: long synchronous stretches give it back now and then.

The worker folds batches, sends a checkpoint's messages and answers /healthz in one loop. A
batch of 10,000 records or a checkpoint that hands 30,000 forwards to the producer runs without
an await that suspends (aiokafka's `send` returns at once while its buffer has room), and
held the loop for 1.5-2 s at a backlog of 130k messages: a liveness probe with a 1 s timeout
failed on a healthy worker. So such loops call `turn()` between steps, which yields once the
loop has been held for `HOLD_S`: a probe waits at most about that long, and the yields cost
nothing measurable (one clock read per step, one loop pass per 50 ms).
"""

from __future__ import annotations

import asyncio
import time

HOLD_S = 0.05


class LoopShare:
    """One holder's stretches: created where a long stretch starts."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        self._hold_s = hold_s
        self._since = time.perf_counter()

    async def turn(self) -> None:
        """Let the loop run other tasks if this holder has held it for `hold_s`."""
        now = time.perf_counter()
        if now - self._since >= self._hold_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
