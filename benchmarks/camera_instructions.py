"""Instructions per camera event in the window stage's fold, counted by callgrind (issue 20).

    python -m benchmarks.camera_instructions [--events 20000]

On a machine shared with other work, CPU time moves ±10% from one minute to the next, more
than most single changes to the fold make; the instructions a run executes do not move (to
about 0.1%). This runs `benchmarks.camera_steps`'s fold (the worker's window stage over the
simulator's events, a cut every 10,000) under `valgrind --tool=callgrind`, counting only what
runs inside `operator.call`, which wraps the fold and nothing else, and prints instructions per
event. Run it on two trees to compare them (the command in each tree's root). Needs valgrind;
about a minute for 20,000 events.
"""

from __future__ import annotations

import argparse
import gc
import operator
import os
import re
import subprocess
import sys

CUT_EVERY = 10_000
MARK = "_operator_call"  # the C function of operator.call: collection is on inside it only


def fold(events: int) -> None:
    """The measured run: setup uncounted, then the fold and its cuts under operator.call."""
    # Imported here: the parent process only starts valgrind.
    import orjson

    from benchmarks.camera_steps import SLICE, new_window_stage, record
    from benchmarks.topic import camera_events
    from city.profile import load_city_profile
    from simulator.baseline_priors import prior_baselines
    from streams.engine.checkpoint import Cut
    from streams.settings import StreamSettings
    from streams.traffic.anomaly.baselines import Baselines
    from streams.traffic.flow import TrafficFlow

    profile = load_city_profile(None)
    baselines = Baselines(prior_baselines(profile), 1)
    stream = TrafficFlow(profile, StreamSettings().traffic_grace_s, baselines)
    records = [
        record(n, event.key.encode(), orjson.dumps(event.value))
        for n, (event, _) in enumerate(camera_events(events, 72))
    ]
    stage = new_window_stage(stream)
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)  # as the worker

    def run() -> None:
        for start in range(0, len(records), CUT_EVERY):
            for at in range(start, min(len(records), start + CUT_EVERY), SLICE):
                stage.fold(0, records[at : at + SLICE])
            stage.cut(Cut(), 0.0)

    operator.call(run)


def count(events: int) -> int:
    """Instructions callgrind counted inside the fold of `events` events."""
    command = [
        "valgrind", "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={MARK}",
        "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "benchmarks.camera_instructions", "--events", str(events), "--inside",
    ]  # fmt: skip
    # The same hash seed every run: set and dict walks then take the same paths.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count in callgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.camera_instructions")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        fold(args.events)
        return
    print(f"{count(args.events) / args.events:,.0f} instructions per camera event (fold and cuts)")


if __name__ == "__main__":
    main()
