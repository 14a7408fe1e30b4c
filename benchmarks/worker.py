"""P1 and P7: one `vtops worker` process re-reading the whole benchmark topic.

Each run has its own consumer group (app id) and data directory, so it starts from offset 0
with an empty ClickHouse store, exactly as a first deployment would. The worker runs as
`tests/pipeline.py` runs it: a subprocess configured by VTOPS_* variables, stopped by SIGTERM,
its embedded ClickHouse read once it has exited.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kafka.admin import KafkaAdminClient

from benchmarks.progress import checkpoints, read_progress, steady_rate
from benchmarks.topic import BenchTopic
from sinks.clickhouse.client import connect
from sinks.settings import StorageSettings

VTOPS = str(Path(sys.executable).parent / "vtops")
POLL_S = 0.5
# Faust's worker logs this at info level once its agents and timers run; its log lines start
# with `[2026-11-26 22:13:58,295]`, local time.
READY_MARK = "[^Worker]: Ready"
LOG_TIME = "[%Y-%m-%d %H:%M:%S,%f]"
# The engine logs this once, when its first poll with records is folded, with the seconds
# since the process started (streams/engine/service.py).
FIRST_FOLD_MARK = "first events folded"


@dataclass(frozen=True)
class WorkerRun:
    events_counted: int  # by the worker's last checkpoint: should equal the topic's size
    steady_events_per_s: float | None  # from pipeline_progress (see benchmarks.progress)
    ready_to_last_cut_events_per_s: float | None  # events / ("Ready" → the last checkpoint's cut)
    caught_up_s: float  # process start → group's committed offsets at the end
    ready_s: float | None  # process start → Faust's "Ready" in the log
    first_fold_s: float | None  # process start → the engine's first events folded (P7)
    first_checkpoint_s: float | None  # process start → first pipeline_progress row
    peak_rss_mb: float  # VmHWM just before SIGTERM
    checkpoints: int
    exit_code: int


class WorkerFailed(RuntimeError):
    pass


def start_worker(
    topic: BenchTopic, app_id: str, data_dir: Path, **extra_env: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """`vtops worker` on the benchmark's topic, own group and own embedded store; its log path."""
    env = {key: value for key, value in os.environ.items() if key != "VTOPS_CLICKHOUSE_URL"}
    env.update(
        VTOPS_KAFKA_BOOTSTRAP=topic.bootstrap,
        VTOPS_TOPIC_PREFIX=topic.prefix,
        VTOPS_APP_ID=app_id,
        VTOPS_PARTITIONS=str(topic.partitions),
        VTOPS_DATA_DIR=str(data_dir),
        **extra_env,
    )
    log_path = data_dir / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [VTOPS, "worker", "--loglevel", "info"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return worker, log_path


def run_worker(
    topic: BenchTopic,
    app_id: str,
    data_dir: Path,
    ends: dict[int, int],
    timeout_s: float,
    **extra_env: str,
) -> WorkerRun:
    # The committed offsets are polled with one admin client held open: a fresh client every
    # half second (as vtops.kafka.offsets.remaining makes) costs CPU the worker needs.
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    started_epoch, started = time.time(), time.monotonic()
    worker, log_path = start_worker(topic, app_id, data_dir, **extra_env)
    try:
        caught_up_s = _wait(worker, admin, topic, app_id, ends, log_path, started, timeout_s)
        peak_rss_mb = _peak_rss_mb(worker.pid)
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=60)
    finally:
        admin.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    storage = StorageSettings(data_dir=data_dir, clickhouse_url=None)
    client = connect(storage)
    try:
        rows = read_progress(client, storage.clickhouse_database, topic.name)
    finally:
        client.close()
    points = checkpoints(rows, ends)
    ready_at = _ready_at(log_path)
    counted = points[-1].events if points else 0
    return WorkerRun(
        events_counted=counted,
        steady_events_per_s=steady_rate(points),
        ready_to_last_cut_events_per_s=(
            counted / (points[-1].at_s - ready_at) if points and ready_at else None
        ),
        caught_up_s=caught_up_s,
        ready_s=ready_at - started_epoch if ready_at else None,
        first_fold_s=first_fold_s(log_path),
        first_checkpoint_s=points[0].at_s - started_epoch if points else None,
        peak_rss_mb=peak_rss_mb,
        checkpoints=len(points),
        exit_code=exit_code,
    )


def _wait(
    worker: subprocess.Popen[bytes],
    admin: KafkaAdminClient,
    topic: BenchTopic,
    app_id: str,
    ends: dict[int, int],
    log_path: Path,
    started: float,
    timeout_s: float,
) -> float:
    """Seconds from process start until the group has committed every message."""
    while left_in_group(admin, topic, app_id, ends) > 0:
        if worker.poll() is not None:
            raise WorkerFailed(f"worker exited with {worker.returncode}:\n{log_tail(log_path)}")
        if time.monotonic() - started > timeout_s:
            raise WorkerFailed(
                f"worker not caught up after {timeout_s:.0f}s:\n{log_tail(log_path)}"
            )
        time.sleep(POLL_S)
    return time.monotonic() - started


def left_in_group(
    admin: KafkaAdminClient, topic: BenchTopic, app_id: str, ends: dict[int, int]
) -> int:
    """Messages the group has not committed yet (as vtops.kafka.offsets.remaining counts)."""
    committed = admin.list_group_offsets(app_id).get(app_id, {})
    done = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic.name}
    return sum(max(0, end - done.get(partition, 0)) for partition, end in ends.items())


def _ready_at(log_path: Path) -> float | None:
    """Epoch seconds of Faust's "Ready" line in the worker's log, if it wrote one."""
    for line in log_path.read_text(errors="replace").splitlines():
        if READY_MARK in line:
            stamp = line[: line.index("]") + 1]
            return datetime.strptime(stamp, LOG_TIME).timestamp()
    return None


def first_fold_s(log_path: Path) -> float | None:
    """Seconds from the worker's process start to its first events folded, as it logged them."""
    for line in log_path.read_text(errors="replace").splitlines():
        if FIRST_FOLD_MARK in line:
            # A number, or None where the process's start is not known (not Linux).
            uptime = re.search(r"uptime_s=([0-9.]+)", line)
            return None if uptime is None else float(uptime.group(1))
    return None


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), read from /proc while it runs."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise WorkerFailed(f"no VmHWM in /proc/{pid}/status")


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
