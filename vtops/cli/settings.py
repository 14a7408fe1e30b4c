"""`vtops settings`: the effective configuration and where each value came from."""

from __future__ import annotations

import json

import typer
from rich.text import Text

from vtops.cli.output import Output, OutputOption, console

app = typer.Typer(
    rich_markup_mode=None, help="Show the effective configuration.", no_args_is_help=True
)


@app.command("show")
def show(output: OutputOption = Output.table) -> None:
    """Print every VTOPS_ setting, its value (secrets masked) and its source."""
    from rich.table import Table

    from vtops.settings import get_settings

    rows = get_settings().described()
    if output is Output.json:
        console.print_json(
            json.dumps([dict(zip(("variable", "value", "source"), r, strict=True)) for r in rows])
        )
        return
    table = Table("variable", "value", "source")
    for variable, value, source in rows:
        if value is None:
            table.add_row(variable, "(unset)", source, style="dim")
        else:
            table.add_row(variable, Text(str(value)), source)
    console.print(table)
