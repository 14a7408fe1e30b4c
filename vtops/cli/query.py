"""`vtops query`: SQL against the configured store, printed in any ClickHouse output format."""

from __future__ import annotations

import sys

import typer


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
    from vtops.cli.store import opened_store

    with opened_store() as (client, _):
        result = client.raw_query(sql, fmt=output_format)
    sys.stdout.write(result.decode())
