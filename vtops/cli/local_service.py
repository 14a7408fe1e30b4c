"""What `vtops kafka` and `vtops clickhouse` share: stopping a local service and showing its
status, for people or for programs."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, console, exit_with_error


def stop_service(name: str, stop: Callable[[], bool]) -> None:
    try:
        stopped = stop()
    except (VtopsError, OSError) as exc:
        exit_with_error(str(exc))
    console.print(f"{name} stopped." if stopped else f"{name} was not running.")


def show_status(fields: Mapping[str, object], output: Output) -> None:
    """Print the fields; exit 3 unless the service is running (scripts wait on it)."""
    if output is Output.json:
        console.print_json(json.dumps(fields))
    else:
        for key, value in fields.items():
            console.print(f"{key:>10}: {value if value is not None else '-'}", soft_wrap=True)
    if fields["state"] != "running":
        raise typer.Exit(3)
