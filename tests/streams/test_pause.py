"""Issue 16, 7: a worker's pause points cannot be reached from its environment."""

from __future__ import annotations

import asyncio
import importlib

import pytest

from streams.engine import pause


def test_the_old_test_variable_in_the_environment_holds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """VTOPS_TEST_PAUSE_AT froze a worker for good while /healthz said 200."""
    monkeypatch.setenv("VTOPS_TEST_PAUSE_AT", "checkpoint")
    reloaded = importlib.reload(pause)  # as a worker starting with it would import it
    # It returns at once when it holds nothing; the bound only turns "held for good" into a
    # failure: 10 s, as 1 s left little margin for a process stalled on a loaded 2-core CI.
    asyncio.run(asyncio.wait_for(reloaded.pause_point("checkpoint"), timeout=10))
