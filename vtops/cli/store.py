"""The configured ClickHouse store for a command that reads it: opened, errors in one line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from city.exceptions import VtopsError
from sinks.clickhouse.client import connect
from vtops.cli.output import exit_with_error
from vtops.settings import get_settings


@contextmanager
def opened_store() -> Iterator[tuple[Client, str]]:
    """(client, database) of the configured store. Reading commands never migrate, so that a
    read-only user can run them: a missing table says whose job the schema is."""
    # The driver logs its retries of an unreachable server; the error below says it once.
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    storage = get_settings().storage
    if storage.clickhouse_url is None and not storage.clickhouse_path.is_dir():
        # Opening would make an empty store there, and then every table would be missing.
        exit_with_error(
            f"no embedded store at {storage.clickhouse_path}: is VTOPS_DATA_DIR the directory "
            "the worker wrote? For a new store, run `vtops migrate` first (or start the worker)"
        )
    try:
        client = connect(storage)
    except VtopsError as error:
        exit_with_error(str(error))
    try:
        yield client, storage.clickhouse_database
    except ClickHouseError as error:
        first_line = str(error).splitlines()[0]
        if "UNKNOWN_TABLE" in first_line or "UNKNOWN_DATABASE" in first_line:
            first_line += " (a new store? run `vtops migrate` first, or start the worker)"
        exit_with_error(first_line)
    finally:
        client.close()
