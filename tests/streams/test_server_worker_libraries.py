"""A worker writing to a ClickHouse server leaves chDB unloaded (issue 20, P5): the embedded
engine with the pyarrow it imports is ~265 MB of a worker's memory, and a worker given
VTOPS_CLICKHOUSE_URL has no use for either. Checked in the running process's memory map,
after it has folded events and written them to the server, so an import anywhere on that path
(the sinks, the checkpoint, the state store, the worker's start) shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from city import topics
from tests.clickhouse_server import own_database
from tests.factories import T0, passage
from tests.pipeline import PipelineRun

pytestmark = pytest.mark.integration

# What the embedded store would map: chDB's library (`_chdb…so`) and pyarrow's (`libarrow…`).
EMBEDDED_ONLY = ("chdb", "arrow")


def test_a_worker_on_a_server_never_loads_chdb_or_pyarrow(
    broker: str, clickhouse_server: str, tmp_path: Path
) -> None:
    with own_database(clickhouse_server, "nochdb") as database:
        run = PipelineRun(
            data_dir=tmp_path, partitions=1, clickhouse_url=clickhouse_server, database=database
        )
        run.create_topics()
        worker = run.start_worker()
        try:
            run.produce_events(
                topics.CAMERA_EVENTS,
                "camera_id",
                [passage(f"{n:032x}", "VT-CAM-001", T0 + n * 1_000) for n in range(20)],
            )
            run.wait_until_checkpointed(topics.CAMERA_EVENTS)
            mapped = Path(f"/proc/{worker.pid}/maps").read_text()
            assert run.stop_worker(worker) == 0
        finally:
            run.kill_leftovers()
        assert run.rows("SELECT count() FROM vtops.traffic_flow_1m") == [(1,)]
    files = {line.split()[-1] for line in mapped.splitlines() if "/" in line}
    loaded = sorted(f for f in files if any(name in f.lower() for name in EMBEDDED_ONLY))
    assert loaded == [], f"a server worker mapped the embedded store's libraries: {loaded}"
