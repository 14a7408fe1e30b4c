"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) on this host.

Used by `vtops kafka start|stop|status`, `vtops demo` and the integration tests. The jars come
from Maven Central through `infra/kafka/pom.xml`; config, data, logs and the pid file live
under `$VTOPS_DATA_DIR/kafka`. Every failure is a BrokerError that says what to do next.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kafka.errors import KafkaError

from city.exceptions import BrokerError
from city.kafka_client import admin_client
from city.settings import KafkaSettings
from sinks.settings import StorageSettings
from vtops.kafka.jars import INSTALL_HINT, BrokerJars, default_kafka_home
from vtops.kafka.offsets import group_members
from vtops.kafka.server_config import cluster_id, log4j2_properties, server_properties
from vtops.local_process import FileLock, await_ready, end, launch, log_tail, pid_of

logger = logging.getLogger(__name__)

JVM_OPTIONS = (
    "-Xmx1G", "-Xms256m", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)  # fmt: skip
BrokerState = Literal["running", "stopped", "unresponsive"]


@dataclass(frozen=True)
class BrokerStatus:
    state: BrokerState  # running: answers Kafka requests; unresponsive: our process, silent
    pid: int | None  # our broker process, None if not started by us (or not alive)
    bootstrap: str
    data_dir: Path
    log_file: Path


class LocalBroker:
    def __init__(
        self, kafka: KafkaSettings, storage: StorageSettings, kafka_home: Path | None = None
    ) -> None:
        self.kafka = kafka
        self.jars = BrokerJars((kafka_home or default_kafka_home()).resolve())
        self.lib_dir = self.jars.lib_dir
        self.root = storage.kafka_dir.resolve()
        self.data_dir = self.root / "data"
        self.logs_dir = self.root / "logs"
        self.log_file = self.logs_dir / "server.log"
        self.console_file = self.logs_dir / "console.out"
        self.properties_file = self.root / "server.properties"
        self.log4j_file = self.root / "log4j2.properties"
        self.pid_file = self.root / "broker.pid"

    def jars_ready(self) -> bool:
        return self.jars.ready()

    def ensure_jars(self) -> bool:
        """Fetch the broker's jars with Maven unless present; True if it fetched."""
        return self.jars.ensure()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> Literal["started", "already running"]:
        """Start the broker unless one answers already; return once it answers group requests
        (a worker started next looks its group up at once)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self._responds():
                self._await_group_coordinator(time.monotonic() + timeout_s)
                return "already running"
            if self._pid() is not None:
                raise BrokerError(
                    f"a broker process (pid {self._pid()}) exists but does not answer at "
                    f"{self.kafka.kafka_bootstrap}; try `vtops kafka stop` first. "
                    f"Log tail:\n{self._log_tail()}"
                )
            java = self._java()
            self.ensure_jars()
            self._write_config()
            self._format_storage(java)
            began = time.monotonic()
            process = self._launch(java)
            self._await_ready(process, began + timeout_s)
            logger.info("broker started pid=%d seconds=%.1f", process.pid, time.monotonic() - began)
            return "started"

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM our broker, SIGKILL after `timeout_s`; False if none was running."""
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        end(pid, grace_s=timeout_s, asked=False, name="broker")
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> BrokerStatus:
        pid = self._pid()
        state: BrokerState = "running" if self._responds() else "unresponsive" if pid else "stopped"
        return BrokerStatus(state, pid, self.kafka.kafka_bootstrap, self.data_dir, self.log_file)

    # --- steps ------------------------------------------------------------------------------

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise BrokerError(
                f"Java 17+ (`java`) is needed to run the Kafka broker; {INSTALL_HINT}"
            )
        return java

    def _write_config(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        host, port = self.kafka.host_port
        self.properties_file.write_text(server_properties(host, port, self.data_dir))
        self.log4j_file.write_text(log4j2_properties())

    def _format_storage(self, java: str) -> None:
        """Format the log dir once (static quorum, so no `--standalone`)."""
        if (self.data_dir / "meta.properties").is_file():
            return
        command = [
            java, "-cp", f"{self.lib_dir}/*", f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.logs_dir}", "kafka.tools.StorageTool", "format",
            "-t", cluster_id(), "-c", str(self.properties_file), *self._format_options(),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"formatting {self.data_dir} failed:\n{result.stdout}{result.stderr}")

    def _format_options(self) -> list[str]:
        """What `StorageTool format` is told besides the cluster id and the config."""
        return ["--ignore-formatted"]

    def _launch(self, java: str) -> subprocess.Popen[bytes]:
        command = [
            java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.logs_dir}", "-cp", f"{self.lib_dir}/*",
            "kafka.Kafka", str(self.properties_file),
        ]  # fmt: skip
        return launch(command, self.root, self.console_file, self.pid_file)

    def _await_ready(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        try:
            code = await_ready(process, deadline, self._responds, self.pid_file)
        except TimeoutError:
            self.stop()
            raise BrokerError(
                f"the broker did not answer at {self.kafka.kafka_bootstrap} within the timeout "
                f"and was stopped. Log tail:\n{self._log_tail()}"
            ) from None
        if code is not None:
            raise BrokerError(
                f"the broker exited with code {code} while starting. Log tail:\n{self._log_tail()}"
            )
        try:
            self._await_group_coordinator(deadline)
        except BrokerError:
            self.stop()
            raise

    def _await_group_coordinator(self, deadline: float) -> None:
        """A new broker answers metadata seconds before groups: it creates its offsets topic on
        the first group lookup and answers "coordinator not available" until it is loaded."""
        try:
            group_members(self.kafka, deadline_s=max(0.0, deadline - time.monotonic()))
        except BrokerError as error:
            raise BrokerError(
                f"the broker at {self.kafka.kafka_bootstrap} answers, but not group requests "
                f"within the timeout: {error}. Log tail:\n{self._log_tail()}"
            ) from None

    # --- probes -----------------------------------------------------------------------------

    def _responds(self) -> bool:
        """A Kafka metadata request succeeds (a bare open port is not enough)."""
        try:
            client = admin_client(self.kafka, bootstrap_timeout_ms=3000)
        except BrokerError:
            return False
        try:
            client.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            client.close()

    def _pid(self) -> int | None:
        """The pid in our pid file if that process lives and is our broker (not a reused pid)."""
        return pid_of(self.pid_file, str(self.properties_file))

    def _log_tail(self) -> str:
        return log_tail((self.console_file, self.log_file), 30, "(no broker log yet)")

    def _lock(self) -> FileLock:
        return FileLock(self.root / ".start.lock")
