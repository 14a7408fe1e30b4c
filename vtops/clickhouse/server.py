"""A local ClickHouse server on 127.0.0.1, run from chDB's engine in a process of its own.

For a laptop and for the tests: several `vtops worker`s of one group need a server to share
(the embedded store admits one process). Production runs a real `clickhouse-server`. Used by
`vtops clickhouse start|stop|status` and the tests' session fixture. Config, log, pid and ports
live under `$VTOPS_DATA_DIR/clickhouse-server`, the data in `$VTOPS_DATA_DIR/clickhouse`, the
embedded store's directory: what a worker wrote embedded is served, and the other way round.
Every failure is a LocalServerError that says what to do next.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sinks.settings import StorageSettings
from vtops.clickhouse.exceptions import LocalServerError
from vtops.clickhouse.server_config import (
    CONFIG_FILE,
    LOG_FILE,
    PORTS_FILE,
    STOP_PIPE,
    USERS_DIR,
    USERS_FILE,
    server_config,
    users_config,
)
from vtops.local_process import FileLock, await_ready, end, launch, log_tail, pid_of

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
ServerState = Literal["running", "stopped", "unresponsive"]
_PORTS = re.compile(r"(\d+)\t(\d+)\n")


@dataclass(frozen=True)
class ServerStatus:
    state: ServerState  # running: answers /ping; unresponsive: our process, silent
    pid: int | None
    http_port: int | None  # the ports it listens on (free ones when asked for 0)
    tcp_port: int | None
    data_dir: Path
    log_file: Path

    @property
    def url(self) -> str | None:
        """What VTOPS_CLICKHOUSE_URL must be for a worker to use this server."""
        return f"http://default:@{HOST}:{self.http_port}" if self.http_port else None


class LocalClickHouse:
    def __init__(self, storage: StorageSettings) -> None:
        self.storage = storage
        self.root = storage.clickhouse_server_dir.resolve()
        self.data_dir = storage.clickhouse_path.resolve()
        self.log_file = self.root / LOG_FILE
        self.console_file = self.root / "console.out"
        self.pid_file = self.root / "server.pid"
        self.ports_file = self.root / PORTS_FILE
        self.stop_pipe = self.root / STOP_PIPE

    # --- lifecycle --------------------------------------------------------------------------

    def start(
        self, timeout_s: float = 30.0, ports: tuple[int, int] | None = None
    ) -> Literal["started", "already running"]:
        """Start the server unless ours answers already; return once it answers /ping.
        `ports` (HTTP, TCP) instead of the settings' keeps a restarted server's address."""
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / ".start.lock"):
            if self.status().state == "running":
                return "already running"
            if self._pid() is not None:
                raise LocalServerError(
                    f"a ClickHouse server process (pid {self._pid()}) exists but does not "
                    f"answer; try `vtops clickhouse stop` first. Log tail:\n{self._log_tail()}"
                )
            http, tcp = ports or (
                self.storage.clickhouse_http_port,
                self.storage.clickhouse_tcp_port,
            )
            self._check_ports_free(http, tcp)
            self._write_config(http, tcp)
            began = time.monotonic()
            process = self._launch()
            self._await_ready(process, began + timeout_s)
            logger.info(
                "clickhouse server started pid=%d seconds=%.1f", process.pid,
                time.monotonic() - began,
            )  # fmt: skip
            return "started"

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Ask our server to end (a line on its pipe: its listeners close, its data is
        flushed), SIGTERM then SIGKILL if it does not; False if none was running."""
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        end(pid, grace_s=timeout_s / 2, asked=self._write_stop_line(), name="clickhouse server")
        self.pid_file.unlink(missing_ok=True)
        self.ports_file.unlink(missing_ok=True)
        return True

    def status(self) -> ServerStatus:
        pid = self._pid()
        ports = self._ports() if pid is not None else None
        http, tcp = ports or (None, None)
        state: ServerState = "stopped"
        if pid is not None:
            state = "running" if http is not None and _pings(http) else "unresponsive"
        return ServerStatus(state, pid, http, tcp, self.data_dir, self.log_file)

    def declare_users(self, name: str, users_xml: str) -> bool:
        """Put `users_xml` in the server's users.d/NAME.xml; a running server restarts on the
        same ports to read it (clickhouse-local reads its users config only at start, and
        has no user storage that SQL could write). False if the file was already so."""
        path = self.root / USERS_DIR / f"{name}.xml"
        if path.is_file() and path.read_text() == users_xml:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(users_xml)
        path.chmod(0o600)  # it holds a password's hash
        report = self.status()
        if report.state == "running" and report.http_port and report.tcp_port:
            self.stop()
            self.start(ports=(report.http_port, report.tcp_port))
            logger.info("clickhouse server restarted to read users.d/%s.xml", name)
        return True

    # --- steps ------------------------------------------------------------------------------

    def _check_ports_free(self, http: int, tcp: int) -> None:
        """A taken port, said before launching (the engine's own error is a stack of text)."""
        for variable, port in (
            ("VTOPS_CLICKHOUSE_HTTP_PORT", http),
            ("VTOPS_CLICKHOUSE_TCP_PORT", tcp),
        ):
            if port and _taken(port):
                raise LocalServerError(_port_taken(variable, port))

    def _write_config(self, http: int, tcp: int) -> None:
        (self.root / CONFIG_FILE).write_text(server_config(http, tcp))
        (self.root / USERS_FILE).write_text(users_config())
        (self.root / USERS_DIR).mkdir(exist_ok=True)
        if not self.stop_pipe.exists():
            os.mkfifo(self.stop_pipe)
        self.ports_file.unlink(missing_ok=True)

    def _launch(self) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "vtops.clickhouse.serve", str(self.root), str(self.data_dir),
        ]  # fmt: skip
        return launch(command, self.root, self.console_file, self.pid_file)

    def _await_ready(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        try:
            code = await_ready(process, deadline, self._answers, self.pid_file)
        except TimeoutError:
            self.stop()
            raise LocalServerError(
                f"the ClickHouse server did not answer within the timeout and was stopped. "
                f"Log tail:\n{self._log_tail()}"
            ) from None
        if code is not None:
            raise LocalServerError(self._why_it_exited(code))

    def _answers(self) -> bool:
        ports = self._ports()
        return ports is not None and _pings(ports[0])

    def _why_it_exited(self, code: int) -> str:
        console = self._log_tail()
        if "Cannot lock file" in console or "EmbeddedServer" in console:
            return (
                f"the ClickHouse store at {self.data_dir} is held by another process (a "
                "`vtops worker` on the embedded store?): stop it first, or give this server "
                "another VTOPS_DATA_DIR"
            )
        if "Address already in use" in console or "NETWORK_ERROR" in console:
            return _port_taken("VTOPS_CLICKHOUSE_HTTP_PORT or VTOPS_CLICKHOUSE_TCP_PORT", None)
        return f"the ClickHouse server exited with code {code} while starting. Log:\n{console}"

    def _write_stop_line(self) -> bool:
        """True once the line is in the pipe; False if the server does not read it (yet)."""
        try:
            fd = os.open(self.stop_pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno in (errno.ENXIO, errno.ENOENT):
                return False
            raise
        try:
            os.write(fd, b"stop\n")
        finally:
            os.close(fd)
        return True

    # --- probes -----------------------------------------------------------------------------

    def _pid(self) -> int | None:
        return pid_of(self.pid_file, "vtops.clickhouse.serve")

    def _ports(self) -> tuple[int, int] | None:
        try:
            found = _PORTS.fullmatch(self.ports_file.read_text())
        except OSError:
            return None
        return (int(found.group(1)), int(found.group(2))) if found else None

    def _log_tail(self) -> str:
        return log_tail((self.console_file, self.log_file), 20, "(no server log yet)")


def _pings(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{http_port}/ping", timeout=2) as answer:
            return bool(answer.read() == b"Ok.\n")
    except (urllib.error.URLError, OSError):
        return False


def _taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _port_taken(variable: str, port: int | None) -> str:
    which = f"port {port}" if port else "a port"
    return (
        f"{which} on {HOST} is taken by another process: stop it, or set {variable} to a free "
        "port (0: any free port; `vtops clickhouse status` then shows it)"
    )
