"""`vtops demo` watches the worker and the simulator it started: one that dies stops the demo
at once, named, with the last lines of its log."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from city.exceptions import VtopsError
from tests.pipeline import PipelineRun
from vtops.demo_processes import DemoProcess

DURATION_S = 60


@pytest.mark.integration
def test_a_demo_whose_worker_cannot_start_stops_at_once_with_the_workers_last_lines(
    broker: str, tmp_path: Path
) -> None:
    """The worker exits 1 at start (its metrics port is taken): the demo must say so and stop
    the simulator, not send the hour and then wait 300 s for messages nobody processes."""
    pipeline = PipelineRun(data_dir=tmp_path)  # the demo makes its topics
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pipeline.extra_env["VTOPS_METRICS_PORT"] = str(port)
        began = time.monotonic()
        demo = pipeline.vtops(
            "demo", "--duration", str(DURATION_S), "--camera-rate", "50", timeout=DURATION_S * 2
        )
        elapsed = time.monotonic() - began

    assert demo.returncode == 1
    error = " ".join(demo.stderr.split())  # rich wraps long lines
    assert "error: the worker (pid" in error
    assert "exited with code 1 while the demo still needed it" in error
    assert f"VTOPS_METRICS_PORT: port {port} on 0.0.0.0 is in use" in error  # its log's tail
    assert elapsed < DURATION_S, "the demo must not outlive its dead worker's simulator"


def test_a_simulator_that_fails_is_named_with_the_last_lines_it_wrote(tmp_path: Path) -> None:
    """Its stderr is on the terminal and in its log: the demo's error repeats the end of it."""
    simulator = DemoProcess(
        "simulator", ["simulate", "--speedup", "0"], tmp_path / "simulator.log", quiet=False
    )
    deadline = time.monotonic() + 30
    with pytest.raises(VtopsError) as failed:
        while not simulator.finished():
            assert time.monotonic() < deadline
            time.sleep(0.05)

    message = str(failed.value)
    assert message.startswith(f"the simulator (pid {simulator.pid}) exited with code 2; ")
    assert "--speedup" in message.partition(str(tmp_path / "simulator.log"))[2]
