"""P9: 1, 2 and 3 workers of one group on a ClickHouse server, over the same camera events,
against one worker on the embedded store in the same invocation. Prints a table; never fails.

    python -m benchmarks.scale_out [--events 1000000] [--partitions 6] [--keep]

The topic is filled once. Each run has its own consumer group and (on the server) its own
database, so each starts from offset 0 on an empty store: events/s is the topic's size over
the time from starting the workers (all at once) to the group having committed every offset,
start-up included. The server is the local one (`vtops clickhouse start`, chDB's engine) on
free ports under the run's scratch directory. A last run measures the rebalance pauses: two
workers drain, a third joins, then one is SIGKILLed; a pause is the time from a worker's
revoke to its next assignment (its partitions stand still meanwhile), and the SIGKILLed one's
partitions stand still from the kill to the survivors' new assignment.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kafka.admin import KafkaAdminClient
from pydantic import SecretStr

from benchmarks.progress import checkpoints, read_progress
from benchmarks.topic import BenchTopic, add_topic_options, clean_up, create_and_fill, end_offsets
from benchmarks.worker import LOG_TIME, WorkerFailed, left_in_group, log_tail, run_worker
from benchmarks.worker import start_worker as start_bench_worker
from sinks.clickhouse.client import connect
from sinks.settings import StorageSettings
from vtops.clickhouse import LocalClickHouse

POLL_S = 0.5
_STAMP = r"^(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\])"
_REVOKED = re.compile(_STAMP + r".*revoked partitions=", re.M)
_ASSIGNED = re.compile(_STAMP + r".*assigned partitions=", re.M)


@dataclass(frozen=True)
class GroupRun:
    label: str
    workers: int
    seconds: float  # start of the workers → every offset committed
    events_counted: int  # by the workers' checkpoints (pipeline_progress)
    peak_rss_mb: list[float]  # per worker (VmHWM)

    def events_per_s(self, events: int) -> float:
        return events / self.seconds


@dataclass
class Server:
    """The local ClickHouse server of this invocation and its URL."""

    local: LocalClickHouse
    url: str

    def storage(self, database: str) -> StorageSettings:
        return StorageSettings(clickhouse_url=SecretStr(self.url), clickhouse_database=database)


def _stamp(text: str) -> float:
    return datetime.strptime(text, LOG_TIME).timestamp()


def _events(stamps: re.Pattern[str], log: str, after: float) -> list[float]:
    return [t for t in (_stamp(m.group(1)) for m in stamps.finditer(log)) if t >= after]


def _server_env(server: Server, database: str) -> dict[str, str]:
    return {"VTOPS_CLICKHOUSE_URL": server.url, "VTOPS_CLICKHOUSE_DATABASE": database}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Group:
    """Workers of one consumer group on the server, started and stopped together."""

    def __init__(self, topic: BenchTopic, server: Server, name: str, scratch: Path) -> None:
        self.topic, self.server, self.name = topic, server, name
        self.database = re.sub(r"\W", "_", name)
        self.scratch = scratch / name
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> subprocess.Popen[bytes]:
        data_dir = self.scratch / f"w{len(self.workers)}"
        data_dir.mkdir(parents=True)
        worker, log = start_bench_worker(
            self.topic, self.name, data_dir, **_server_env(self.server, self.database)
        )
        self.workers.append((worker, log))
        return worker

    def left(self, admin: KafkaAdminClient, ends: dict[int, int]) -> int:
        for worker, log in self.workers:
            if worker.poll() not in (None, -signal.SIGKILL):
                raise WorkerFailed(f"worker exited with {worker.returncode}:\n{log_tail(log)}")
        return left_in_group(admin, self.topic, self.name, ends)

    def stop(self) -> list[float]:
        """SIGTERM every live worker; their peak RSS, read just before."""
        peaks = [_rss_mb(w.pid) for w, _ in self.workers if w.poll() is None]
        for worker, _ in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker, _ in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        return peaks

    def counted(self, ends: dict[int, int]) -> int:
        client = connect(self.server.storage(self.database))
        try:
            points = checkpoints(read_progress(client, self.database, self.topic.name), ends)
        finally:
            client.close()
        return points[-1].events if points else 0

    def logs(self) -> list[str]:
        return [log.read_text(errors="replace") for _, log in self.workers]


def until_committed(
    group: Group, admin: KafkaAdminClient, ends: dict[int, int], below: int, timeout_s: float
) -> None:
    """Until fewer than `below` messages are left uncommitted (1: all committed)."""
    deadline = time.monotonic() + timeout_s
    while group.left(admin, ends) >= below:
        if time.monotonic() > deadline:
            raise WorkerFailed(f"group {group.name} not there after {timeout_s:.0f} s")
        time.sleep(POLL_S)


def scale_run(
    topic: BenchTopic, server: Server, n: int, ends: dict[int, int], scratch: Path, timeout_s: float
) -> GroupRun:
    group = Group(topic, server, topic.group(f"server{n}", 0), scratch)
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    started = time.monotonic()
    try:
        for _ in range(n):
            group.start()
        until_committed(group, admin, ends, 1, timeout_s)
        seconds = time.monotonic() - started
    finally:
        admin.close()
        peaks = group.stop()
    return GroupRun(f"{n} worker(s), server", n, seconds, group.counted(ends), peaks)


@dataclass(frozen=True)
class Pauses:
    join_revoke_to_assign_s: list[float]  # each worker already there, when the third joined
    join_to_all_assigned_s: float | None  # the third's process start → the last worker assigned
    kill_revoke_to_assign_s: list[float]  # each survivor, at the rebalance after the kill
    kill_to_taken_over_s: float | None  # SIGKILL → the survivors assigned its partitions
    events_counted: int


def pause_run(
    topic: BenchTopic, server: Server, ends: dict[int, int], scratch: Path, timeout_s: float
) -> Pauses:
    total = sum(ends.values())
    group = Group(topic, server, topic.group("pauses", 0), scratch)
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    try:
        for _ in range(2):
            group.start()
        until_committed(group, admin, ends, total * 3 // 4, timeout_s)
        joined_at = time.time()
        group.start()
        until_committed(group, admin, ends, total // 2, timeout_s)
        killed_at = time.time()
        victim = group.workers[0][0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        until_committed(group, admin, ends, 1, timeout_s)
    finally:
        admin.close()
        group.stop()
    logs = group.logs()

    def revoke_to_assign(log: str, since: float, until: float) -> float | None:
        revokes = [t for t in _events(_REVOKED, log, since) if t < until]
        if not revokes:
            return None
        assigned = _events(_ASSIGNED, log, revokes[0])
        return assigned[0] - revokes[0] if assigned else None

    def first_assigned(since: float, among: list[str]) -> float | None:
        found = [_events(_ASSIGNED, log, since) for log in among]
        return max((times[0] for times in found if times), default=None)

    joins = [revoke_to_assign(log, joined_at, killed_at) for log in logs[:2]]
    kills = [revoke_to_assign(log, killed_at, float("inf")) for log in logs[1:]]
    all_assigned = first_assigned(joined_at, logs)
    taken_over = first_assigned(killed_at, logs[1:])
    return Pauses(
        [p for p in joins if p is not None],
        None if all_assigned is None else all_assigned - joined_at,
        [p for p in kills if p is not None],
        None if taken_over is None else taken_over - killed_at,
        group.counted(ends),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_out")
    parser.add_argument("--events", type=int, default=1_000_000, help="camera events")
    parser.add_argument("--seed", type=int, default=72, help="the simulator's seed")
    parser.add_argument("--max-workers", type=int, default=3)
    add_topic_options(parser)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    topic = BenchTopic.fresh(args.bootstrap, args.partitions)
    scratch = Path(tempfile.mkdtemp(prefix=f"{topic.token}-"))
    timeout_s = 120 + args.events / 1_000
    local = LocalClickHouse(
        StorageSettings(data_dir=scratch / "server", clickhouse_http_port=0, clickhouse_tcp_port=0)
    )
    runs: list[GroupRun] = []
    groups = [topic.group("embedded", 0), topic.group("pauses", 0)]
    try:
        print(f"filling {topic.name} with {args.events:,} events …", file=sys.stderr, flush=True)
        create_and_fill(topic, args.events, args.seed)
        ends = end_offsets(topic)
        print("  1 worker, embedded …", file=sys.stderr, flush=True)
        (scratch / "embedded").mkdir()
        alone = run_worker(topic, groups[0], scratch / "embedded", ends, timeout_s)
        runs.append(
            GroupRun("1 worker, embedded", 1, alone.caught_up_s, alone.events_counted,
                     [alone.peak_rss_mb])
        )  # fmt: skip
        local.start()
        server = Server(local, str(local.status().url))
        for n in range(1, args.max_workers + 1):
            print(f"  {n} worker(s), server …", file=sys.stderr, flush=True)
            groups.append(topic.group(f"server{n}", 0))
            runs.append(scale_run(topic, server, n, ends, scratch, timeout_s))
        print("  rebalance pauses: 2 workers, a third joins, one SIGKILLed …", file=sys.stderr)
        pauses = pause_run(topic, server, ends, scratch, timeout_s)
    finally:
        local.stop()
        if args.keep:
            print(f"kept topics {topic.prefix}*, data {scratch}", file=sys.stderr)
        else:
            clean_up(topic, groups)
            shutil.rmtree(scratch, ignore_errors=True)
    _print(args, runs, pauses, load_start)


def _print(
    args: argparse.Namespace, runs: list[GroupRun], pauses: Pauses, load_start: tuple[float, ...]
) -> None:
    print(
        f"vtops scale-out · {args.events:,} camera events · {args.partitions} partitions · "
        f"{os.cpu_count()} CPUs · {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
    )
    print(f"load average at start {[round(x, 2) for x in load_start]}, at end "
          f"{[round(x, 2) for x in os.getloadavg()]}")  # fmt: skip
    print()
    print("| run | start → all committed, s | events/s | counted | peak RSS per worker, MB |")
    print("|---|---:|---:|---:|---|")
    for run in runs:
        rss = ", ".join(f"{mb:,.0f}" for mb in run.peak_rss_mb)
        print(
            f"| {run.label} | {run.seconds:.1f} | {run.events_per_s(args.events):,.0f} | "
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
