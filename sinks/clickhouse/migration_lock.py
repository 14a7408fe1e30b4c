"""One migrator at a time per database: several workers starting together against an empty
database on a server must not run the same migrations side by side (one wins, the others
wait and then find the store up to date).

ClickHouse has no transactions or advisory locks, but creating a table is atomic: of several
`CREATE TABLE` of one name exactly one succeeds. The lock is that table; its holder drops it
when done. A holder that died leaves it behind: after STALE_S the next migrator takes it over
(a migration run takes seconds; the migrations are safe to repeat, see migrations.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from sinks.exceptions import SinkError

log = logging.getLogger(__name__)

LOCK_TABLE: Final = "schema_migrations_lock"
STALE_S: Final = 300.0
_POLL_S: Final = 0.2


def _age_s(client: Client, database: str) -> float | None:
    """Seconds since the lock was taken; None when nobody holds it."""
    rows = client.query(
        "SELECT dateDiff('millisecond', metadata_modification_time, now()) / 1000 "
        "FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": LOCK_TABLE},
    ).result_rows
    return float(rows[0][0]) if rows else None


def _try_take(client: Client, database: str) -> bool:
    try:
        client.command(f"CREATE TABLE {database}.{LOCK_TABLE} (taken UInt8) ENGINE = Memory")
    except DatabaseError as error:
        if "TABLE_ALREADY_EXISTS" in str(error) or "Code: 57." in str(error):
            return False
        raise
    return True


@contextmanager
def migration_lock(client: Client, database: str, wait_s: float = STALE_S + 60) -> Iterator[None]:
    """Hold the database's migration lock inside the block; wait for another holder."""
    deadline = time.monotonic() + wait_s
    while not _try_take(client, database):
        age = _age_s(client, database)
        if age is not None and age > STALE_S:
            log.warning(
                "schema migration lock stale, taken over database=%s age_s=%.0f", database, age
            )
            client.command(f"DROP TABLE IF EXISTS {database}.{LOCK_TABLE}")
            continue
        if time.monotonic() > deadline:
            raise SinkError(
                f"another vtops has been migrating the ClickHouse database {database} for "
                f"{age or 0:.0f} s (the table {database}.{LOCK_TABLE}); if none is, drop that table"
            )
        time.sleep(_POLL_S)
    try:
        yield
    finally:
        client.command(f"DROP TABLE IF EXISTS {database}.{LOCK_TABLE}")
