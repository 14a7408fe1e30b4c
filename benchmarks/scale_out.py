"""P9: 1, 2 and 3 workers of one group on a ClickHouse server, over the same camera events,
against one worker on the embedded store in the same invocation. Prints a table; never fails.

    python -m benchmarks.scale_out [--events 1000000] [--rekeyed-events 200000] [--keep]

The topic is filled once. Each run has its own consumer group and (on the server) its own
database, so each starts from offset 0 on an empty store: events/s is the topic's size over
the time from starting the workers (all at once) to the group having committed every offset,
start-up included. The server is the local one (`vtops clickhouse start`, chDB's engine) on
free ports under the run's scratch directory. A last run measures the rebalance pauses when
a worker joins and when one is SIGKILLed (benchmarks/rebalance.py).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from benchmarks.rebalance import Pauses, pause_run
from benchmarks.rekeyed import end_offsets as every_end
from benchmarks.rekeyed import fill, steps, tallies
from benchmarks.server_group import Group, Server, until_all_committed
from benchmarks.topic import BenchTopic, add_topic_options, clean_up, create_and_fill, end_offsets
from city import topics
from sinks.settings import StorageSettings
from vtops.clickhouse import LocalClickHouse


@dataclass(frozen=True)
class GroupRun:
    label: str
    workers: int
    seconds: float  # start of the workers → every offset committed
    events_counted: int  # by the workers' checkpoints (pipeline_progress)
    peak_rss_mb: list[float]  # per worker (VmHWM)

    def events_per_s(self, events: int) -> float:
        return events / self.seconds


@dataclass(frozen=True)
class Input:
    camera_ends: dict[int, int]  # partition → end offset of the camera topic
    every_end: dict[TopicPartition, int]  # of every input topic that holds messages
    messages: int


def scale_run(
    topic: BenchTopic, server: Server | None, n: int, given: Input, scratch: Path, timeout_s: float
) -> GroupRun:
    where = "embedded" if server is None else "server"
    group = Group(topic, server, topic.group(f"{where}{n}", 0), scratch)
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    started = time.monotonic()
    try:
        for _ in range(n):
            group.start()
        until_all_committed(group, admin, given.every_end, timeout_s)
        seconds = time.monotonic() - started
    finally:
        admin.close()
        peaks = group.stop()
    label = f"{n} worker{'s' if n > 1 else ''}, {where}"
    return GroupRun(label, n, seconds, group.counted(given.camera_ends), peaks)


def fill_inputs(topic: BenchTopic, events: int, rekeyed: int, seed: int) -> Input:
    """The camera events, and `rekeyed` tallies and portal steps (benchmarks.rekeyed's)."""
    create_and_fill(topic, events, seed)
    rng = random.Random(seed)
    names = [topic.name]
    if rekeyed:
        fill(topic, topics.PAYMENT_COUNTS, tallies(rekeyed, rng))
        fill(topic, topics.PORTAL_TRANSACTIONS, steps(rekeyed, rng))
        names += [
            f"{topic.prefix}{topics.PAYMENT_COUNTS}",
            f"{topic.prefix}{topics.PORTAL_TRANSACTIONS}",
        ]
    return Input(end_offsets(topic), every_end(topic.bootstrap, names), events + 2 * rekeyed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_out")
    parser.add_argument("--events", type=int, default=1_000_000, help="camera events")
    parser.add_argument("--seed", type=int, default=72, help="the simulator's seed")
    parser.add_argument(
        "--rekeyed-events", type=int, default=0, help="tallies, and portal steps, besides"
    )
    parser.add_argument("--max-workers", type=int, default=3)
    add_topic_options(parser)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    topic = BenchTopic.fresh(args.bootstrap, args.partitions)
    scratch = Path(tempfile.mkdtemp(prefix=f"{topic.token}-"))
    timeout_s = 120 + args.events / 1_000 + args.rekeyed_events / 250
    local = LocalClickHouse(
        StorageSettings(data_dir=scratch / "server", clickhouse_http_port=0, clickhouse_tcp_port=0)
    )
    runs: list[GroupRun] = []
    groups = [topic.group("pauses", 0)]
    try:
        print(f"filling {topic.prefix}* …", file=sys.stderr, flush=True)
        given = fill_inputs(topic, args.events, args.rekeyed_events, args.seed)
        print("  1 worker, embedded …", file=sys.stderr, flush=True)
        groups.append(topic.group("embedded1", 0))
        runs.append(scale_run(topic, None, 1, given, scratch, timeout_s))
        local.start()
        server = Server(local, str(local.status().url))
        for n in range(1, args.max_workers + 1):
            print(f"  {n} worker(s), server …", file=sys.stderr, flush=True)
            groups.append(topic.group(f"server{n}", 0))
            runs.append(scale_run(topic, server, n, given, scratch, timeout_s))
        print("  rebalance pauses: 2 workers, a third joins, one SIGKILLed …", file=sys.stderr)
        pauses = pause_run(topic, server, given.camera_ends, scratch, timeout_s)
    finally:
        local.stop()
        if args.keep:
            print(f"kept topics {topic.prefix}*, data {scratch}", file=sys.stderr)
        else:
            clean_up(topic, groups)
            shutil.rmtree(scratch, ignore_errors=True)
    _print(args, runs, pauses, load_start, given.messages)


def _print(
    args: argparse.Namespace,
    runs: list[GroupRun],
    pauses: Pauses,
    load_start: tuple[float, ...],
    messages: int,
) -> None:
    print(
        f"vtops scale-out · {args.events:,} camera events, {args.rekeyed_events:,} tallies and "
        f"{args.rekeyed_events:,} portal steps · {args.partitions} partitions · "
        f"{os.cpu_count()} CPUs · {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
    )
    print(f"load average at start {[round(x, 2) for x in load_start]}, at end "
          f"{[round(x, 2) for x in os.getloadavg()]}")  # fmt: skip
    print()
    print(
        "| run | start → all committed, s | messages/s | camera events counted | "
        "peak RSS per worker, MB |"
    )
    print("|---|---:|---:|---:|---|")
    for run in runs:
        rss = ", ".join(f"{mb:,.0f}" for mb in run.peak_rss_mb)
        print(
            f"| {run.label} | {run.seconds:.1f} | {run.events_per_s(messages):,.0f} | "
            f"{run.events_counted:,} | {rss} |"
        )
    print()

    def seconds(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values) or "-"

    joins, kills = seconds(pauses.join_revoke_to_assign_s), seconds(pauses.kill_revoke_to_assign_s)
    print(
        f"third worker joins: others' revoke → assignment {joins} s; join → every worker "
        f"assigned {_maybe(pauses.join_to_all_assigned_s)} s"
    )
    print(
        f"one SIGKILLed: survivors' revoke → assignment {kills} s; kill → its partitions taken "
        f"over {_maybe(pauses.kill_to_taken_over_s)} s (the group's session timeout is 10 s)"
    )
    print(f"events counted in that run: {pauses.events_counted:,} of {args.events:,}")


def _maybe(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


if __name__ == "__main__":
    main()
