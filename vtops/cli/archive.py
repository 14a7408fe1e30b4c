"""`vtops archive export|import`: a stretch of the input topics to a Parquet file and back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from city.exceptions import VtopsError
from vtops.cli.output import console, exit_with_error

if TYPE_CHECKING:
    from rich.progress import Progress

    from vtops.replay.archive import ArchiveCounts

app = typer.Typer(
    rich_markup_mode=None,
    help="Keep a stretch of the city's input topics in a file, and replay it.",
    no_args_is_help=True,
)


def _progress() -> Progress:
    from rich.progress import (
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _summary(verb: str, counts: ArchiveCounts, seconds: float) -> None:
    for topic, n in sorted(counts.by_topic.items()):
        console.print(f"  {topic}: {n}", markup=False)
    rate = counts.total / seconds if seconds > 0 else 0.0
    console.print(f"{verb} {counts.total} messages in {seconds:.1f} s ({rate:,.0f}/s)")


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="the Parquet file to write")],
    from_time: str = typer.Option(..., "--from", help="first message at or after this time"),
    to_time: str = typer.Option(..., "--to", help="up to the first message at or after this"),
    streams: str | None = typer.Option(
        None, help="comma-separated streams (traffic or camera, payments, portal); default: all"
    ),
) -> None:
    """Write the input topics' messages between two times (keys, values, headers, timestamps,
    partitions and offsets) to a zstd-compressed Parquet file."""
    from city.profile import load_city_profile
    from vtops.replay.archive import export_archive
    from vtops.replay.selection import chosen_streams
    from vtops.replay.times import epoch_ms, parse_instant
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        tz = load_city_profile(settings.stream.city_profile).tz
        since = epoch_ms(parse_instant("--from", from_time, tz))
        until = epoch_ms(parse_instant("--to", to_time, tz))
        chosen = chosen_streams(settings, streams)
        with _progress() as progress:
            task = progress.add_task("exporting", total=None)
            started = progress.get_time()
            counts = export_archive(
                settings.kafka, chosen, since, until, out, lambda n: progress.advance(task, n)
            )
            elapsed = progress.get_time() - started
    except VtopsError as error:
        exit_with_error(str(error))
    _summary(f"Wrote {out}:", counts, elapsed)


@app.command("import")
def import_(
    archive: Annotated[Path, typer.Argument(help="a file `vtops archive export` wrote")],
    speedup: float = typer.Option(1.0, help="replay this many times faster than recorded"),
    no_pace: bool = typer.Option(False, "--no-pace", help="send as fast as the broker takes them"),
) -> None:
    """Send an archive's messages to this environment's input topics (VTOPS_TOPIC_PREFIX),
    with their keys, headers and timestamps, paced by their timestamps."""
    from vtops.replay.archive import import_archive
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        with _progress() as progress:
            task = progress.add_task("importing", total=None)
            started = progress.get_time()
            counts = import_archive(
                settings.kafka,
                archive,
                None if no_pace else speedup,
                lambda n: progress.advance(task, n),
            )
            elapsed = progress.get_time() - started
    except VtopsError as error:
        exit_with_error(str(error))
    _summary("Sent", counts, elapsed)
