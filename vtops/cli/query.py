"""`vtops query`: SQL against the configured store, printed in any ClickHouse output format."""

from __future__ import annotations

import logging
import sys

import typer
from clickhouse_connect.driver.exceptions import ClickHouseError

from city.exceptions import VtopsError
from sinks.clickhouse.client import connect
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
        result = client.raw_query(sql, fmt=output_format)
    except ClickHouseError as error:
        first_line = str(error).split("\n")[0]
        # It only reads, so a read-only user can run it: the schema is `vtops migrate`'s job.
        if "UNKNOWN_DATABASE" in first_line or "UNKNOWN_TABLE" in first_line:
            first_line += " (a new store? run `vtops migrate` or start the worker first)"
        exit_with_error(first_line)
    finally:
        client.close()
    sys.stdout.write(result.decode())
