"""`vtops clickhouse start|stop|status`: the local server from chDB's engine (the pinned
chdb-core: this fails first if an upgrade changes how its listeners open)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.clickhouse.client import connect
from sinks.settings import StorageSettings
from tests.clickhouse_server import server_storage
from tests.pipeline import VTOPS
from vtops.clickhouse import LocalClickHouse

pytestmark = pytest.mark.integration


def _vtops(data_dir: Path, *args: str, **ports: int) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "VTOPS_DATA_DIR": str(data_dir),
        "VTOPS_CLICKHOUSE_HTTP_PORT": str(ports.get("http", 0)),
        "VTOPS_CLICKHOUSE_TCP_PORT": str(ports.get("tcp", 0)),
    }
    return subprocess.run(
        [VTOPS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    _vtops(tmp_path, "clickhouse", "stop")


def _status(data_dir: Path) -> dict[str, object]:
    shown = _vtops(data_dir, "clickhouse", "status", "--output", "json")
    return dict(json.loads(shown.stdout))


def test_start_serves_migrations_on_free_ports_and_stop_keeps_the_data(data_dir: Path) -> None:
    started = _vtops(data_dir, "clickhouse", "start")
    assert started.returncode == 0, started.stderr
    status = _status(data_dir)
    assert status["state"] == "running" and status["data_dir"] == str(data_dir / "clickhouse")
    url = str(status["url"])
    assert f"export VTOPS_CLICKHOUSE_URL={url}" in started.stdout
    server = LocalClickHouse(StorageSettings(data_dir=data_dir, clickhouse_http_port=0))
    assert server.start() == "already running"

    client = connect(server_storage(url))
    try:
        version = client.query("SELECT version()").result_rows[0][0]
        client.command("CREATE DATABASE kept")
        client.command("CREATE TABLE kept.t (n UInt8) ENGINE = MergeTree ORDER BY n")
        client.insert("kept.t", [[7]], column_names=["n"])
        native_port = int(str(status["tcp_port"]))
        over_native = client.query(f"SELECT n FROM remote('127.0.0.1:{native_port}', kept.t)")
        assert over_native.result_rows == [(7,)]
    finally:
        client.close()
    assert version.startswith("26.9")

    stopped = _vtops(data_dir, "clickhouse", "stop")
    assert stopped.stdout.strip() == "ClickHouse stopped."
    assert server.status().state == "stopped"
    assert server.start() == "started"
    client = connect(server_storage(str(server.status().url)))
    try:
        assert client.query("SELECT n FROM kept.t").result_rows == [(7,)]
    finally:
        client.close()


def test_a_taken_port_is_one_line_that_names_the_setting(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = _vtops(data_dir, "clickhouse", "start", http=port)
    assert refused.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in refused.stderr
    assert "VTOPS_CLICKHOUSE_HTTP_PORT" in refused.stderr and "Traceback" not in refused.stderr


def test_a_store_held_by_an_embedded_worker_is_said_so(data_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "from sinks.clickhouse.client import connect; "
         "from sinks.settings import StorageSettings; import sys; "
         f"c = connect(StorageSettings(data_dir={str(data_dir)!r})); print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = _vtops(data_dir, "clickhouse", "start")
    finally:
        holder.communicate("", timeout=30)
    assert refused.returncode == 1
    assert "is held by another process" in refused.stderr and "vtops worker" in refused.stderr
    assert LocalClickHouse(StorageSettings(data_dir=data_dir)).status().state == "stopped"
