"""`vtops topics create|list`: the contract's topics (section 3) on the configured broker."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error
from vtops.kafka import describe_contract_topics, ensure_topics
from vtops.settings import get_settings

app = typer.Typer(help="Create and inspect the contract's topics.", no_args_is_help=True)


@app.command("create")
def create() -> None:
    """Create every missing input, output and dead-letter topic (idempotent)."""
    settings = get_settings().kafka
    try:
        created = ensure_topics(settings)
    except VtopsError as exc:
        exit_with_error(str(exc))
    for name in created:
        console.print(f"created {name} ({settings.partitions} partitions)")
    if not created:
        console.print("All topics exist already.")


@app.command("list")
def list_topics(output: OutputOption = Output.table) -> None:
    """Each contract topic, whether it exists, and its partition count."""
    kafka = get_settings().kafka
    try:
        states = describe_contract_topics(kafka)
    except VtopsError as exc:
        exit_with_error(str(exc))
    if output is Output.json:
        console.print_json(json.dumps([asdict(s) for s in states]))
        return
    table = Table("topic", "exists", "partitions")
    for state in states:
        partitions = "-" if state.partitions is None else str(state.partitions)
        table.add_row(state.name, "yes" if state.exists else "no", partitions)
    console.print(table)
