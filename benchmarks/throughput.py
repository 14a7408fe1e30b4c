"""Throughput of the pipeline against its peer and its ceiling (TARGETS P1, P2, P3, P7; P5's
peak RSS; P6 with `--events 1000000 --runs 1`). Prints numbers; never fails on a target.

    python -m benchmarks.throughput [--events 300000] [--runs 3] [--partitions 6] [--keep]

One topic is filled once with the simulator's camera events; every run then reads all of it
three ways, each with a new consumer group: `vtops worker` (P1), Quix Streams computing the
same per-camera minute counts (P2), a bare aiokafka loop that only decodes (P3). Medians over
the runs are printed, and ratios of the medians of this one invocation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import print_report
from benchmarks.runs import Run, measures, one_run
from benchmarks.topic import (
    PRODUCER_NAME,
    BenchTopic,
    add_topic_options,
    clean_up,
    create_and_fill,
    end_offsets,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput")
    parser.add_argument("--events", type=int, default=300_000, help="camera events in the topic")
    parser.add_argument("--runs", type=int, default=3, help="runs of each reader; medians shown")
    parser.add_argument("--seed", type=int, default=72, help="the simulator's seed")
    add_topic_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_start = os.getloadavg()
    topic = BenchTopic.fresh(args.bootstrap, args.partitions)
    scratch = Path(tempfile.mkdtemp(prefix=f"{topic.token}-"))
    timeout_s = 120 + args.events / 1_000
    runs: list[Run] = []
    try:
        print(f"filling {topic.name} with {args.events:,} events …", file=sys.stderr, flush=True)
        fill = create_and_fill(topic, args.events, args.seed)
        ends = end_offsets(topic)
        if sum(ends.values()) != args.events:
            held = sum(ends.values())
            raise RuntimeError(f"{topic.name} holds {held} messages, not {args.events}")
        for run in range(args.runs):
            runs.append(one_run(topic, args.events, ends, run, scratch, timeout_s))
    finally:
        if args.keep:
            kept = f"topics {topic.prefix}*, groups {topic.token}-*, data {scratch}"
            print(f"kept {kept}", file=sys.stderr)
        else:
            roles = ("worker", "quix")
            clean_up(topic, [topic.group(role, run) for role in roles for run in range(args.runs)])
            shutil.rmtree(scratch, ignore_errors=True)
    header = {
        "events": args.events,
        "runs": args.runs,
        "partitions": args.partitions,
        "topic": topic.name,
        "producer": PRODUCER_NAME,
        "fill_events_per_s": round(fill.events_per_s),
        "fill_s": round(fill.seconds, 2),
        "city_minutes": fill.city_minutes,
        "cpus": os.cpu_count(),
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print_report(header, measures(runs))


if __name__ == "__main__":
    main()
