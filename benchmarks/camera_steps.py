"""Where a camera event's time goes: CPU µs per event, step by step (TARGETS P1-P3, issue 20).

    python -m benchmarks.camera_steps [--events 100000] [--repeats 3]

The per-event budget method of ../shared/research/engine.md, for the camera path as
benchmarks.rekeyed_steps does it for the re-keyed streams: each step of the worker's path is
run alone over the same `--events` simulator events as benchmarks.throughput sends, in this
process, in CPU time (`time.process_time`, so that other processes sharing the machine weigh
less than in wall time), with the garbage collector set as the worker sets it; the best of
`--repeats` is printed. The window stage is the worker's own, with the baseline priors a
fresh store gets, nothing saved and sinks that keep nothing.
Step rows are parts of the totals below them, not additions to them. Not in it: the consume
(aiokafka's fetch and parse, ~2 µs), the sinks' writes (ClickHouse inserts, the output topic)
and start-up; a py-spy profile of a real worker shows those.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from benchmarks.topic import camera_events
from city.profile import load_city_profile
from simulator.baseline_priors import prior_baselines
from streams.engine.checkpoint import Cut
from streams.engine.definition import Records
from streams.engine.offline import NothingSaved, discarding_sinks
from streams.engine.skew import reject_far_future
from streams.engine.window_stage import WindowStage
from streams.engine.windows import dedup_key
from streams.settings import StreamSettings
from streams.traffic.anomaly.baselines import Baselines
from streams.traffic.flow import TrafficFlow

SLICE = 500  # records a fold gets at a time, as the engine's FOLD_SLICE
CUT_EVERY = 50_000  # events between two cuts (a checkpoint a second at ~50k/s)
TOPIC = "camera.events"


def record(offset: int, key: bytes, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, key, value, None, len(key), len(value), [])


def best(repeats: int, run: Callable[[], object]) -> float:
    """Least CPU seconds of `repeats` runs."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def new_window_stage(stream: TrafficFlow) -> WindowStage[Any, Any]:
    settings = StreamSettings()
    stage: WindowStage[Any, Any] = WindowStage(
        stream, TOPIC, discarding_sinks(), NothingSaved(), {},
        settings.max_clock_skew_s, lambda _t, _p: None,
    )  # fmt: skip
    asyncio.run(stage.assign(0))
    return stage


def fold_and_cut(stream: TrafficFlow, records: list[ConsumerRecord], repeats: int) -> list[float]:
    """[fold seconds, cut seconds], each the best of `repeats` fresh stages."""
    fold_s = cut_s = float("inf")
    for _ in range(repeats):
        stage = new_window_stage(stream)
        folding = cutting = 0.0
        for start in range(0, len(records), CUT_EVERY):
            began = time.process_time()
            for at in range(start, min(len(records), start + CUT_EVERY), SLICE):
                stage.fold(0, records[at : at + SLICE])
            cut_at = time.process_time()
            stage.cut(Cut(), 0.0)
            folding += cut_at - began
            cutting += time.process_time() - cut_at
        fold_s, cut_s = min(fold_s, folding), min(cut_s, cutting)
    return [fold_s, cut_s]


def steps(events: int, repeats: int, seed: int) -> list[tuple[str, float]]:
    profile = load_city_profile(None)
    settings = StreamSettings()
    stream = TrafficFlow(profile, settings.traffic_grace_s, Baselines(prior_baselines(profile), 1))
    records = [
        record(n, event.key.encode(), orjson.dumps(event.value))
        for n, (event, _) in enumerate(camera_events(events, seed))
    ]
    values = [r.value for r in records]
    decoded = [stream.decode(v) for v in values]
    latest_ms = int(time.time() * 1000) + 3_600_000
    # As the worker runs (vtops/cli/worker.py): what its start made frozen, young collections
    # every 20,000 allocations; otherwise the collector's walks over the messages and events
    # held here weigh on whichever step allocates most.
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)

    def check() -> None:
        for event in decoded:
            reject_far_future(stream, event, latest_ms)

    def windows(watch: bool) -> None:
        # The fold's bookkeeping alone, over one partition's windows; with `watch`, every
        # event also shown to the anomaly watch as the fold does: the difference is its share.
        state, found = stream.new_state(), Records()
        for n, event in enumerate(decoded):
            assignment = stream.assign(event)
            if assignment is not None:
                seen_as = dedup_key(assignment.event_id)
                if state.is_new(seen_as):
                    state.is_late(
                        assignment.end_ms, assignment.event_time_ms, None, event.camera_id
                    )
                    state.admit(
                        seen_as, assignment.group, assignment.start_ms, assignment.end_ms, n
                    )
            if watch:
                stream.tell_watch(state, event, found)

    fold_s, cut_s = fold_and_cut(stream, records, repeats)
    watched = best(repeats, lambda: windows(watch=True))
    bare = best(repeats, lambda: windows(watch=False))
    decode = best(repeats, lambda: [stream.decode(v) for v in values])
    return [
        ("decode (msgspec, profile check)", decode),
        ("far-future check", best(repeats, check)),
        ("assign (Assignment)", best(repeats, lambda: [stream.assign(e) for e in decoded])),
        ("windows: assign, lateness, dedup, admit", bare),
        ("anomaly watch: its hook", max(0.0, watched - bare)),
        ("windows: fold (whole, as the worker)", fold_s),
        ("windows: cut (rows, state encoding)", cut_s),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.camera_steps")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=72, help="the simulator's seed")
    args = parser.parse_args(argv)
    results = steps(args.events, args.repeats, args.seed)
    print(f"CPU µs per camera event, best of {args.repeats}, {args.events:,} events")
    for step, seconds in results:
        print(f"{step:<45}{seconds / args.events * 1e6:>8.2f}")


if __name__ == "__main__":
    main()
