"""A progress bar for long replays: events done, rate, time left."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vtops.cli.output import console


@contextmanager
def events_progress(
    description: str, total: int, shown: bool = True
) -> Iterator[Callable[[int], None]]:
    """A bar over `total` events; call what it yields with each batch's size. Not `shown` when
    the command's output is for a program (`--output json`)."""
    started = time.monotonic()
    if not shown:
        yield lambda _n: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            done = progress.tasks[0].completed + n
            rate = done / max(time.monotonic() - started, 1e-6)
            progress.update(task, advance=n, rate=f"{rate:,.0f}/s")

        yield advance
