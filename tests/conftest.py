"""Shared fixtures: the real broker, started once per session if it is not already up."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clickhouse_server import serving
from tests.pipeline import BOOTSTRAP, VTOPS, PipelineRun


@pytest.fixture(scope="session")
def broker() -> str:
    started = subprocess.run(
        [VTOPS, "kafka", "start"], capture_output=True, text=True, timeout=600, check=False
    )
    assert started.returncode == 0, (
        f"local Kafka did not start:\n{started.stdout}\n{started.stderr}"
    )
    return BOOTSTRAP


@pytest.fixture
def pipeline(broker: str, tmp_path: Path) -> Iterator[PipelineRun]:
    run = PipelineRun(data_dir=tmp_path)
    run.create_topics()
    yield run
    run.kill_leftovers()


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[str]:
    """A ClickHouse server's VTOPS_CLICKHOUSE_URL for the server-path tests (never skipped:
    the local server starts here when CI has not started it)."""
    with serving() as url:
        yield url
