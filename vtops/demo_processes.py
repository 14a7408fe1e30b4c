"""The worker and the simulator that `vtops demo` runs side by side, watched.

Either may die early (a worker that cannot start, a simulator refused by the broker): the demo
then stops at once, says which one and shows the last lines of its log, instead of waiting for
messages nobody will process. The worker writes only to its log; the simulator's progress stays
on the terminal and its stderr goes both there and to its log.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from city.exceptions import VtopsError

LOG_TAIL_LINES = 20


class DemoProcess:
    """One `vtops` subcommand run by the demo, with its log file."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, quiet: bool) -> None:
        """`quiet`: all output to the log (the worker); else stdout to the terminal and stderr
        to both (the simulator)."""
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "vtops", *args]
        if quiet:
            with log_path.open("wb") as log:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            self._tee: threading.Thread | None = None
        else:
            self.process = subprocess.Popen(command, stderr=subprocess.PIPE)
            assert self.process.stderr is not None
            self._tee = threading.Thread(
                target=_tee, args=(self.process.stderr, log_path), daemon=True
            )
            self._tee.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def finished(self) -> bool:
        """Whether it has exited; VtopsError (the demo's reason to stop) if with an error."""
        code = self.process.poll()
        if code is None:
            return False
        if code != 0:
            raise self.failure(f"exited with code {code}")
        return True

    def ensure_running(self) -> None:
        """VtopsError if it has exited, with any code: this one is meant to run until stopped."""
        code = self.process.poll()
        if code is not None:
            raise self.failure(f"exited with code {code} while the demo still needed it")

    def stop(self, timeout_s: float) -> int:
        """SIGTERM (a worker's last checkpoint, then exit), SIGKILL after `timeout_s`; the
        exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tee is not None:
            self._tee.join(timeout=5)
        return self.process.returncode

    def failure(self, what: str) -> VtopsError:
        if self._tee is not None:
            self._tee.join(timeout=5)  # its last words, before they are read back
        lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        tail = "\n".join(lines) if lines else "(nothing)"
        return VtopsError(
            f"the {self.name} (pid {self.pid}) {what}; the last lines of {self.log_path}:\n{tail}"
        )


def _tee(source: IO[bytes], log_path: Path) -> None:
    """Copies the simulator's stderr, line by line, to the terminal's and to its log."""
    with log_path.open("wb") as log:
        for line in source:
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
            log.write(line)
            log.flush()
