"""A consumer group of `vtops worker`s on the local ClickHouse server, for the scale-out runs:
started one by one, polled for what the group has left, stopped together."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import KafkaAdminClient
from pydantic import SecretStr

from benchmarks.progress import checkpoints, read_progress
from benchmarks.topic import BenchTopic
from benchmarks.worker import WorkerFailed, left_in_group, log_tail
from benchmarks.worker import start_worker as start_bench_worker
from sinks.clickhouse.client import connect
from sinks.settings import StorageSettings
from vtops.clickhouse import LocalClickHouse

POLL_S = 0.5


@dataclass
class Server:
    """The local ClickHouse server of this invocation and its URL."""

    local: LocalClickHouse
    url: str

    def storage(self, database: str) -> StorageSettings:
        return StorageSettings(clickhouse_url=SecretStr(self.url), clickhouse_database=database)


def server_env(server: Server, database: str) -> dict[str, str]:
    return {"VTOPS_CLICKHOUSE_URL": server.url, "VTOPS_CLICKHOUSE_DATABASE": database}


def rss_mb(pid: int) -> float:
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
            self.topic, self.name, data_dir, **server_env(self.server, self.database)
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
        peaks = [rss_mb(w.pid) for w, _ in self.workers if w.poll() is None]
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
