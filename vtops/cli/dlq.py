"""`vtops dlq show|redrive`: dead letters by reason, and sending them back after a fix."""

from __future__ import annotations

import json
from collections import Counter

import typer
from rich.table import Table

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error
from vtops.replay.dead_letters import DeadLetter, plan_redrive, read_dead_letters, redrive
from vtops.replay.selection import chosen_streams
from vtops.replay.times import epoch_ms, parse_instant
from vtops.settings import Settings, get_settings

app = typer.Typer(
    help="Inspect dead letters and send them back to their input topic.", no_args_is_help=True
)

SINCE_HELP = "only letters written at or after this time, e.g. 2026-11-30T08:00:00+07:00"
REASON_HELP = "only letters whose reason contains this text (case-insensitive), e.g. camera_id"
STREAMS_HELP = "comma-separated streams (traffic or camera, payments, portal); default: all"


def _letters(
    settings: Settings, since: str | None, reason: str | None, streams: str | None
) -> list[DeadLetter]:
    chosen = chosen_streams(settings, streams)
    since_ms = None if since is None else epoch_ms(parse_instant("--since", since))
    return read_dead_letters(settings.kafka, chosen, since_ms, reason)


@app.command("show")
def show(
    since: str | None = typer.Option(None, help=SINCE_HELP),
    reason: str | None = typer.Option(None, help=REASON_HELP),
    streams: str | None = typer.Option(None, help=STREAMS_HELP),
    limit: int = typer.Option(50, help="letters listed in the table (json lists all)"),
    output: OutputOption = Output.table,
) -> None:
    """The dead letters, counted by reason, then listed (newest last)."""
    settings = get_settings()
    try:
        letters = _letters(settings, since, reason, streams)
    except VtopsError as error:
        exit_with_error(str(error))
    if output is Output.json:
        console.print_json(json.dumps([letter.summary() for letter in letters], default=str))
        return
    by_reason = Table("letters", "reason")
    by_reason.columns[1].overflow = "fold"
    for text, n in Counter(letter.reason for letter in letters).most_common():
        by_reason.add_row(str(n), text)
    console.print(by_reason)
    listed = Table("source topic", "partition", "offset", "received at", "reason")
    listed.columns[0].overflow = "fold"
    for letter in letters[-limit:] if limit > 0 else []:
        row = letter.summary()
        listed.add_row(
            *(str(row[k]) for k in ("source_topic", "partition", "offset")),
            str(row["received_at"]),
            letter.reason,
        )
    console.print(listed)
    console.print(f"{len(letters)} dead letters")


@app.command("redrive")
def redrive_letters(
    since: str | None = typer.Option(None, help=SINCE_HELP),
    reason: str | None = typer.Option(None, help=REASON_HELP),
    streams: str | None = typer.Option(None, help=STREAMS_HELP),
    dry_run: bool = typer.Option(False, help="print what would be sent and send nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Send the chosen dead letters back to their input topic with their original key,
    headers and timestamp; the worker deduplicates them like any other event."""
    settings = get_settings()
    try:
        planned = plan_redrive(
            _letters(settings, since, reason, streams), chosen_streams(settings, streams)
        )
    except VtopsError as error:
        exit_with_error(str(error))
    sending = [p for p in planned if p.topic is not None]
    for p in planned:
        if p.skipped is not None:
            where = p.letter.summary()
            console.print(
                f"skipped {where['source_topic']}/{where['partition']}/{where['offset']}: "
                f"{p.skipped}",
                markup=False,
            )
    counts = Counter(p.topic for p in sending)
    for topic, n in sorted(counts.items()):
        console.print(f"{'would send' if dry_run else 'sending'} {n} to {topic}", markup=False)
    if dry_run or not sending:
        console.print("Dry run: nothing sent." if dry_run else "Nothing to re-drive.")
        return
    if not yes and not typer.confirm(f"Re-drive {len(sending)} dead letters?"):
        raise typer.Exit(1)
    try:
        sent = redrive(settings.kafka, planned)
    except VtopsError as error:
        exit_with_error(str(error))
    console.print(f"Re-drove {sent} dead letters.")
