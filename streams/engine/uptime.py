"""How long this process has run: the start-up's milestones are logged against it.

Issue 20's P7 is "process start to the first event folded"; the process's own start (not the
moment Python got to our code) is what a supervisor, a benchmark or an operator counts from.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def process_uptime_s() -> float | None:
    """Seconds since the kernel started this process, to the millisecond; None where /proc does
    not say (not Linux).

    /proc/self/stat's field 22 is the start in clock ticks since boot (10 ms steps), on the
    clock CLOCK_BOOTTIME reads."""
    try:
        stat = Path("/proc/self/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces: the first
    # of them is field 3 of proc(5), so field 22 is at index 19.
    started_ticks = int(stat.rsplit(")", 1)[1].split()[19])
    started_s = started_ticks / os.sysconf("SC_CLK_TCK")
    return round(time.clock_gettime(time.CLOCK_BOOTTIME) - started_s, 3)
