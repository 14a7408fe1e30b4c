"""What the local services (the Kafka broker, the ClickHouse server) share about their
processes: a lock that serializes starts on one data dir, and whether a pid still lives."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


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
