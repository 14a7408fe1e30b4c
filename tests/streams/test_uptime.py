"""The process's own uptime, against which the worker logs its first fold (issue 20, P7)."""

from __future__ import annotations

import subprocess
import sys
import time

ASK_AFTER_SLEEP = (
    "import time; time.sleep(0.3); "
    "from streams.engine.uptime import process_uptime_s; print(process_uptime_s())"
)


def test_a_new_process_reports_the_time_it_has_lived() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", ASK_AFTER_SLEEP], capture_output=True, text=True, check=True
    )
    lived = time.monotonic() - started
    # The kernel's start is in 10 ms ticks; the child slept 0.3 s before it asked.
    assert 0.3 <= float(done.stdout) <= lived + 0.02
