"""Drives the real pipeline for integration tests: a real broker, `vtops worker` as a process,
and the ClickHouse it wrote: the embedded store, read once the worker has stopped, or a
server (tests/clickhouse_server.py) in a database of the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2
from pydantic import SecretStr

from city.settings import KafkaSettings
from sinks.clickhouse.client import connect
from sinks.settings import StorageSettings
from tests.stream_times import InputClock
from vtops.kafka.offsets import remaining, wait_until_consumed

BOOTSTRAP = os.environ.get("VTOPS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
VTOPS = str(Path(sys.executable).parent / "vtops")
PAUSED = "tests.paused_worker"
REPOSITORY = Path(__file__).resolve().parents[1]


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key, as producers will."""
    return int((murmur2(key.encode()) & 0x7FFFFFFF) % partitions)


def key_per_partition(prefix: str, partitions: int) -> list[str]:
    """One key for each partition, in partition order: `prefix` plus a number."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        found.setdefault(partition_of(f"{prefix}{n}", partitions), f"{prefix}{n}")
        n += 1
    return [found[p] for p in range(partitions)]


def closing_keys(prefix: str, partitions: int) -> list[str]:
    """Two keys per partition: producers that move every partition's stream time together (one
    alone leads its partition's others by half the grace at most, streams/engine/lead.py)."""
    return key_per_partition(f"{prefix}a", partitions) + key_per_partition(f"{prefix}b", partitions)


@dataclass
class InputStreamTimes:
    """Stream time per input partition (contract section 5), for the tests' models: events
    land where their producer's key puts them, and one producer's lead over the partition's
    others is bounded by `lead_ms` (half the grace, tests/stream_times.py)."""

    partitions: int
    lead_ms: int
    times: dict[int, int] = field(default_factory=dict)
    _clocks: dict[int, InputClock] = field(default_factory=dict)

    def advance(self, key: str, ts_ms: int) -> int:
        """The stream time of `key`'s partition once an event at `ts_ms` has arrived there."""
        partition = partition_of(key, self.partitions)
        clock = self._clocks.setdefault(partition, InputClock(self.lead_ms))
        self.times[partition] = now = clock.advance(key, ts_ms)
        return now

    def passed(self, at_ms: int) -> bool:
        """Every input partition has passed `at_ms`: a window ending then (plus grace) is final.
        A partition that never had an event holds it back (the tests' workers never judge a
        partition idle)."""
        return len(self.times) == self.partitions and min(self.times.values()) >= at_ms


@dataclass
class PipelineRun:
    """One isolated run: its own topic prefix, consumer group and data directory."""

    data_dir: Path
    partitions: int = 3
    bootstrap: str = BOOTSTRAP  # a test's own broker, or the session's
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}.")
    extra_env: dict[str, str] = field(default_factory=dict)
    # Another consumer group on the same topics: a second app reading what the first did.
    group: str | None = None
    # A ClickHouse server's URL and the test's database there; None: the embedded store.
    clickhouse_url: str | None = None
    database: str = "vtops"
    # Workers keep the default metrics port, as an operator's several workers on one host do.
    default_metrics_port: bool = False
    _logs: dict[int, Path] = field(default_factory=dict)
    _workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def app_id(self) -> str:
        return self.group or self.prefix.rstrip(".")

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VTOPS_KAFKA_BOOTSTRAP": self.bootstrap,
            "VTOPS_TOPIC_PREFIX": self.prefix,
            "VTOPS_APP_ID": self.app_id,
            "VTOPS_PARTITIONS": str(self.partitions),
            "VTOPS_DATA_DIR": str(self.data_dir),
            # Results must not depend on how long a test pauses: no input partition goes idle.
            "VTOPS_IDLE_PARTITION_S": "3600",
            # Tests run workers side by side: no fixed port (a test that scrapes picks one).
            **({} if self.default_metrics_port else {"VTOPS_METRICS_PORT": "0"}),
            **self._store_env,
            **self.extra_env,
        }

    @property
    def _store_env(self) -> dict[str, str]:
        if self.clickhouse_url is None:
            return {}
        return {
            "VTOPS_CLICKHOUSE_URL": self.clickhouse_url,
            "VTOPS_CLICKHOUSE_DATABASE": self.database,
        }

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def vtops(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VTOPS, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def create_topics(self) -> None:
        done = self.vtops("topics", "create")
        assert done.returncode == 0, done.stderr

    def start_worker(self, paused_at: str | None = None) -> subprocess.Popen[bytes]:
        """`vtops worker`; held for good at a pause point when `paused_at` names one
        (streams/engine/pause.py), through a launcher only tests have."""
        path = self.data_dir / f"worker-{time.monotonic_ns()}.log"
        log = open(path, "wb")  # noqa: SIM115
        command = [VTOPS] if paused_at is None else [sys.executable, "-m", PAUSED, paused_at]
        worker = subprocess.Popen(
            [*command, "worker", "--loglevel", "info"],
            env=self.env,
            cwd=None if paused_at is None else REPOSITORY,  # where `tests` imports from
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._logs[worker.pid] = path
        self._workers.append(worker)
        return worker

    def kill_leftovers(self) -> None:
        """SIGKILL every worker this run started that still runs (a test that failed midway
        leaves them behind), resumed first in case a test had stopped it."""
        for worker in self._workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)
                worker.kill()
                worker.wait()

    def wait_until_assigned(self, worker: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """Until the worker has its partitions and their state: it is consuming."""
        self.wait_for_log(worker, "assigned partitions=", timeout)

    def wait_for_log(
        self, worker: subprocess.Popen[bytes], text: str, timeout: float = 60, after: int = 0
    ) -> None:
        """Until the worker has logged `text` (past the first `after` characters)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_of(worker)[after:]:
            assert worker.poll() is None, f"worker exited with {worker.returncode}"
            assert time.monotonic() < deadline, f"worker did not log {text!r} within {timeout}s"
            time.sleep(0.1)

    def log_of(self, worker: subprocess.Popen[bytes]) -> str:
        return self._logs[worker.pid].read_text(errors="replace")

    def produce(
        self,
        topic: str,
        messages: Iterable[tuple[str, bytes | None]],
        compression: str | None = None,
    ) -> None:
        """Send (key, raw value) pairs in order, keyed as the contract says, in batches
        compressed with `compression` (gzip, snappy, lz4, zstd) if given."""
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, compression_type=compression
        )
        for key, value in messages:
            producer.send(self.topic(topic), key=key.encode(), value=value)
        producer.flush()
        producer.close()

    def produce_events(self, topic: str, key_field: str, events: Iterable[dict[str, Any]]) -> None:
        self.produce(topic, ((str(e[key_field]), orjson.dumps(e)) for e in events))

    @property
    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(
            kafka_bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            app_id=self.app_id,
            partitions=self.partitions,
        )

    def wait_until_checkpointed(self, topic: str, timeout: float = 90) -> None:
        """Until the worker has committed every message of `topic`: offsets are committed only
        after a checkpoint, so then every message is in ClickHouse and in the state store."""
        wait_until_consumed(self.kafka_settings, [self.topic(topic)], timeout)

    def wait_for_progress(self, topic: str, timeout: float = 60) -> None:
        """Until the worker has checkpointed some of what is waiting in `topic`, if anything."""
        waiting = remaining(self.kafka_settings, self.topic(topic))
        if waiting == 0:
            return
        deadline = time.monotonic() + timeout
        while remaining(self.kafka_settings, self.topic(topic)) >= waiting:
            assert time.monotonic() < deadline, f"worker made no progress within {timeout}s"
            time.sleep(0.2)

    @staticmethod
    def stop_worker(worker: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        worker.send_signal(sig)
        return worker.wait(timeout=45)

    @contextmanager
    def store(self) -> Iterator[Client]:
        """The ClickHouse the workers wrote: the embedded one only once they have stopped."""
        url = None if self.clickhouse_url is None else SecretStr(self.clickhouse_url)
        client = connect(StorageSettings(data_dir=self.data_dir, clickhouse_url=url))
        try:
            yield client
        finally:
            client.close()

    def sql(self, text: str) -> str:
        """`text` with its tables in this run's database (the tests' queries say `vtops.`)."""
        return text.replace("vtops.", f"{self.database}.")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.store() as client:
            return [tuple(row) for row in client.query(self.sql(sql)).result_rows]
