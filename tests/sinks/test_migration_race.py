"""Several workers starting at once against an empty database on a ClickHouse server: one
migrates, the others wait for it and find the store up to date."""

from __future__ import annotations

import threading

import pytest

from city.profile import load_city_profile
from sinks.clickhouse.client import connect
from sinks.clickhouse.migration_lock import LOCK_TABLE
from sinks.clickhouse.migrations import LATEST, VERSION_TABLE, migrate, schema_version
from tests.clickhouse_server import own_database, server_storage

pytestmark = pytest.mark.integration
MIGRATORS = 4
CITY_TZ = load_city_profile().timezone


def test_migrators_started_together_apply_each_migration_once(clickhouse_server: str) -> None:
    with own_database(clickhouse_server, "race") as database:
        clients = [connect(server_storage(clickhouse_server)) for _ in range(MIGRATORS)]
        start = threading.Barrier(MIGRATORS)
        applied: list[list[int]] = []
        failed: list[BaseException] = []

        def worker_start(index: int) -> None:
            start.wait()
            try:
                applied.append(
                    [m.version for m in migrate(clients[index], database, timezone=CITY_TZ)]
                )
            except BaseException as error:  # the test reports it, whatever it is
                failed.append(error)

        threads = [threading.Thread(target=worker_start, args=(i,)) for i in range(MIGRATORS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        client = clients[0]
        try:
            assert failed == []
            assert sorted(applied) == [[]] * (MIGRATORS - 1) + [list(range(1, LATEST + 1))]
            assert schema_version(client, database) == LATEST
            rows = client.query(f"SELECT version FROM {database}.{VERSION_TABLE} ORDER BY version")
            assert [r[0] for r in rows.result_rows] == list(range(1, LATEST + 1))
            tables = client.query(
                "SELECT name FROM system.tables WHERE database = {db:String}",
                parameters={"db": database},
            )
            assert LOCK_TABLE not in {r[0] for r in tables.result_rows}
        finally:
            for each in clients:
                each.close()
