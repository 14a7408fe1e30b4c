"""`vtops query`: SQL against the configured store, printed in any ClickHouse output format."""

from __future__ import annotations

import logging
import sys

import typer
from clickhouse_connect.driver.exceptions import ClickHouseError

from city.exceptions import VtopsError
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from vtops.cli.output import exit_with_error
from vtops.settings import get_settings


def query(
    sql: str = typer.Argument(
        ..., help="the SQL to run, e.g. 'SELECT count() FROM vtops.traffic_flow_1m FINAL'"
    ),
    output_format: str = typer.Option(
        "PrettyCompact",
        "--format",
        "-f",
        help="a ClickHouse output format: PrettyCompact, CSV, JSONEachRow, ...",
    ),
) -> None:
    """Run SQL against ClickHouse (embedded by default; needs the worker stopped)."""
    # The driver logs its retries of an unreachable server; the error below says it once.
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    storage = get_settings().storage
    try:
        client = connect(storage)
    except VtopsError as error:
        exit_with_error(str(error))
    try:
        migrate(client, storage.clickhouse_database)
        result = client.raw_query(sql, fmt=output_format)
    except ClickHouseError as error:
        exit_with_error(str(error).split("\n")[0])
    finally:
        client.close()
    sys.stdout.write(result.decode())
