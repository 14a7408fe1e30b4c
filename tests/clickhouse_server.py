"""The ClickHouse server the server-path tests share: the local one (`vtops clickhouse start`,
on free ports under var/test-clickhouse; .ci/run starts it first), or a real server named by
VTOPS_TEST_CLICKHOUSE_URL. Each test gets a database of its own and drops it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from sinks.clickhouse.client import connect
from sinks.settings import StorageSettings
from vtops.clickhouse import LocalClickHouse

ROOT = Path(__file__).resolve().parent.parent
# Its own data dir: the checkout's ./var/clickhouse stays free for `make demo`.
TEST_SERVER_DATA = ROOT / "var" / "test-clickhouse"


def local_server() -> LocalClickHouse:
    return LocalClickHouse(
        StorageSettings(
            data_dir=TEST_SERVER_DATA,
            clickhouse_url=None,
            clickhouse_http_port=0,
            clickhouse_tcp_port=0,
        )
    )


@contextmanager
def serving() -> Iterator[str]:
    """The server's VTOPS_CLICKHOUSE_URL; a local server this started is stopped after."""
    given = os.environ.get("VTOPS_TEST_CLICKHOUSE_URL")
    if given:
        yield given
        return
    server = local_server()
    started = server.start() == "started"
    try:
        url = server.status().url
        assert url is not None, f"the local ClickHouse server does not answer: {server.status()}"
        yield url
    finally:
        if started:
            server.stop()


def local_data_dir(otherwise: Path) -> Path:
    """VTOPS_DATA_DIR for a command that must find the local server (`vtops dashboards
    prepare-store` declares users in its config); `otherwise` with a real server."""
    return otherwise if os.environ.get("VTOPS_TEST_CLICKHOUSE_URL") else TEST_SERVER_DATA


def server_storage(url: str, database: str = "vtops") -> StorageSettings:
    return StorageSettings(clickhouse_url=SecretStr(url), clickhouse_database=database)


@contextmanager
def own_database(url: str, stem: str = "t") -> Iterator[str]:
    """A fresh database name on the server, dropped afterwards (made by whoever migrates)."""
    database = f"{stem}_{uuid.uuid4().hex[:10]}"
    try:
        yield database
    finally:
        client = connect(server_storage(url))
        try:
            client.command(f"DROP DATABASE IF EXISTS {database}")
        finally:
            client.close()
