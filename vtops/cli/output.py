"""What every command shares for talking to the operator."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def exit_with_error(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)
