"""What every command shares for talking to the operator."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True, soft_wrap=True)

# Exit codes beside 0 and 1 (a fault): a setting or an option the command cannot run with.
USAGE_ERROR = 2


class Output(StrEnum):
    """`--output` of every command that reports: a table for people, JSON for programs."""

    table = "table"
    json = "json"


OutputOption = Annotated[Output, typer.Option(help="table or json")]


def print_error(message: str) -> None:
    errors.print(f"[bold red]error:[/] {escape(message)}")


def exit_with_error(message: str, code: int = 1) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)
