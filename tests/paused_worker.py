"""`vtops` with the worker held at a pause point (streams/engine/pause.py), for the tests that
SIGKILL it there: `python -m tests.paused_worker <point> worker --loglevel info`."""

from __future__ import annotations

import sys
from typing import get_args

from streams.engine.pause import PausePoint, hold_at
from vtops.cli.main import app

if __name__ == "__main__":
    point = sys.argv[1]
    if point not in get_args(PausePoint):
        sys.exit(f"not a pause point: {point!r} (one of {get_args(PausePoint)})")
    hold_at(point)  # type: ignore[arg-type]
    app(sys.argv[2:], prog_name="vtops")
