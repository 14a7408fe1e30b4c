"""`vtops settings`: the effective configuration and where each value came from."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from vtops.cli.output import console
from vtops.settings import get_settings

app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(output: str = typer.Option("table", help="table or json")) -> None:
    """Print every VTOPS_ setting, its value (secrets masked) and its source."""
    rows = get_settings().described()
    if output == "json":
        console.print_json(
            json.dumps([dict(zip(("variable", "value", "source"), r, strict=True)) for r in rows])
        )
        return
    table = Table("variable", "value", "source")
    for row in rows:
        table.add_row(*row)
    console.print(table)
