"""What the local services (the Kafka broker, the ClickHouse server) share about their
processes: a lock that serializes starts on one data dir, whether a pid still lives, and how
one is launched, awaited, ended and its log shown."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

logger = logging.getLogger(__name__)


class FileLock:
    """Serializes concurrent `start` calls (the demo and an operator, say) on one data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def alive(pid: int) -> bool:
    try:
        # Reap it first if it is our own exited child, or it would look alive as a zombie.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Exited, but its parent (another process than ours) has not reaped it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def pid_of(pid_file: Path, marker: str) -> int | None:
    """The pid in `pid_file` if that process lives and its command line holds `marker` (so
    a reused pid is not taken for ours)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no procfs: trust the pid file
    return pid if marker.encode() in cmdline else None


def launch(command: list[str], cwd: Path, console_file: Path, pid_file: Path) -> Popen[bytes]:
    """Start a service detached from our session (it outlives the command that started it),
    this start's output in `console_file`, its pid in `pid_file`."""
    with console_file.open("wb") as console:
        process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=console,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    pid_file.write_text(f"{process.pid}\n")
    return process


def await_ready(
    process: Popen[bytes], deadline: float, answers: Callable[[], bool], pid_file: Path
) -> int | None:
    """Wait until the service `answers`: None once it does; its exit code if it exits first
    (its pid file removed); raises TimeoutError at `deadline`, the process left running."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file.unlink(missing_ok=True)
            return process.returncode
        if answers():
            return None
        time.sleep(0.1)
    raise TimeoutError


def end(pid: int, grace_s: float, asked: bool, name: str) -> None:
    """Wait for `pid` to end, escalating to SIGTERM then SIGKILL, each after `grace_s`; with
    `asked` false (no polite request was made), SIGTERM goes at once."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if asked:
            deadline = time.monotonic() + grace_s
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        if not alive(pid):
            return
        if asked:
            logger.warning("%s still running, sending %s pid=%d", name, sig.name, pid)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return  # it ended between the check and the signal
        asked = True
    while alive(pid):
        time.sleep(0.1)


def log_tail(paths: tuple[Path, ...], lines: int, nothing: str) -> str:
    """The last `lines` of each log, after its last few ERROR lines: the cause is often an
    ERROR scrolled away by shutdown chatter."""
    tails = []
    for path in paths:
        if path.is_file():
            recent = path.read_text(errors="replace").splitlines()[-2000:]
            errors = [line for line in recent[:-lines] if "] ERROR " in line][-3:]
            shown = [*errors, "...", *recent[-lines:]] if errors else recent[-lines:]
            tails.append(f"--- {path}\n" + "\n".join(shown))
    return "\n".join(tails) or nothing
