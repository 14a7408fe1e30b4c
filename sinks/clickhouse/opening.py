"""A worker's store, opened: connected, checked, and migrating in its one thread while the worker
goes on starting (issue 20, P7: the migrations of a fresh store need not hold up its start).

The worker opens it before it imports the rest of itself, so the migrations (chDB's work runs
without the GIL) proceed beside those imports; the engine's state store waits for `migrated`
before its first call (streams/engine/state_store.py).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import Migration, checked_version, migrate
from sinks.settings import StorageSettings


@dataclass(frozen=True)
class OpenedStore:
    client: Client
    # chDB and the HTTP client both block: every call to the store runs in this one thread.
    thread: ThreadPoolExecutor
    # The first call in `thread`, so every later one runs after it.
    migrated: Future[list[Migration]]


def open_store(storage: StorageSettings, timezone: str) -> OpenedStore:
    """Connect; refuse, now and in one line, a store this release must not migrate for a city
    in `timezone` (vtops/cli/worker.py); then start the migrations in the store's thread."""
    client = connect(storage)
    checked_version(client, storage.clickhouse_database, timezone=timezone)
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
    migrated = thread.submit(migrate, client, storage.clickhouse_database, timezone=timezone)
    return OpenedStore(client, thread, migrated)
