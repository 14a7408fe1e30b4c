"""A test hook: `VTOPS_TEST_PAUSE_AT=<point>` holds the worker at that point for good, so that
a test can SIGKILL it exactly there (tests/streams/test_worst_moments.py). Unset, as in
production, every pause point returns at once."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Literal

log = logging.getLogger(__name__)

# checkpoint: a checkpoint's cut is taken, nothing of it written yet;
# before-state-save: its rows are in ClickHouse and the topics, its state and offsets are not;
# restore: a restore has re-read some of the open windows' ids, not all.
PausePoint = Literal["checkpoint", "before-state-save", "restore"]

_PAUSE_AT = os.environ.get("VTOPS_TEST_PAUSE_AT")


async def pause_point(point: PausePoint) -> None:
    if point == _PAUSE_AT:
        log.warning("paused at %s for a test (VTOPS_TEST_PAUSE_AT)", point)
        await asyncio.Event().wait()
