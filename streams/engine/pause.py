"""Moments a test holds the worker at, so that it can SIGKILL it exactly there
(tests/streams/test_worst_moments.py, through tests/paused_worker.py).

Only code running inside the worker's own process can set a hold: no environment variable or
setting reaches it, so a deployment can never freeze a worker whose /healthz still answers 200.
Without a hold, as always in production, every pause point returns at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

log = logging.getLogger(__name__)

# checkpoint: a checkpoint's cut is taken, nothing of it written yet;
# before-state-save: its rows are in ClickHouse and the topics, its state and offsets are not;
# restore: a restore has re-read some of the open windows' ids, not all.
PausePoint = Literal["checkpoint", "before-state-save", "restore"]

_held_at: set[PausePoint] = set()


def hold_at(point: PausePoint) -> None:
    """Hold the worker of this process at `point` for good (a test's launcher calls this)."""
    _held_at.add(point)


async def pause_point(point: PausePoint) -> None:
    if point in _held_at:
        log.warning("paused at %s for a test", point)
        await asyncio.Event().wait()
