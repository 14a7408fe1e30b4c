"""A consumer group of `vtops worker`s for the scale-out runs, on the local ClickHouse server
(or one worker on its embedded store): started one by one, polled for what the group has
left, stopped together."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from pydantic import SecretStr

from benchmarks.progress import checkpoints, read_progress
from benchmarks.rekeyed import end_offsets, left
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
    """Workers of one consumer group, started and stopped together; `server` None: one
    worker on the embedded store of its data dir."""

    def __init__(self, topic: BenchTopic, server: Server | None, name: str, scratch: Path) -> None:
        self.topic, self.server, self.name = topic, server, name
        self.database = re.sub(r"\W", "_", name)
        self.scratch = scratch / name
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> subprocess.Popen[bytes]:
        data_dir = self.scratch / f"w{len(self.workers)}"
        data_dir.mkdir(parents=True)
        env = {} if self.server is None else server_env(self.server, self.database)
        worker, log = start_bench_worker(self.topic, self.name, data_dir, **env)
        self.workers.append((worker, log))
        return worker

    def check(self) -> None:
        for worker, log in self.workers:
            if worker.poll() not in (None, -signal.SIGKILL):
                raise WorkerFailed(f"worker exited with {worker.returncode}:\n{log_tail(log)}")

    def left(self, admin: KafkaAdminClient, ends: dict[int, int]) -> int:
        """Camera events the group has not committed."""
        self.check()
        return left_in_group(admin, self.topic, self.name, ends)

    def by_group_topics(self) -> list[str]:
        """The worker's internal topics of the re-keyed streams (its second stage's input)."""
        return [f"{self.topic.prefix}{self.name}.{s}.by-group" for s in ("payments", "portal")]

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
        """Camera events counted by the workers' checkpoints (pipeline_progress)."""
        if self.server is None:
            storage = StorageSettings(data_dir=self.scratch / "w0", clickhouse_url=None)
            database = storage.clickhouse_database
        else:
            storage, database = self.server.storage(self.database), self.database
        client = connect(storage)
        try:
            points = checkpoints(read_progress(client, database, self.topic.name), ends)
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


def until_all_committed(
    group: Group, admin: KafkaAdminClient, inputs: dict[TopicPartition, int], timeout_s: float
) -> None:
    """Until the group has committed every input message, then (the input being done, every
    forward is in them) every message of its re-keyed streams' by-group topics."""
    deadline = time.monotonic() + timeout_s
    for phase in range(2):
        ends = inputs if phase == 0 else end_offsets(group.topic.bootstrap, group.by_group_topics())
        while True:
            group.check()
            if left(admin, group.name, ends) == 0:
                break
            if time.monotonic() > deadline:
                raise WorkerFailed(f"group {group.name} not done after {timeout_s:.0f} s")
            time.sleep(POLL_S)
