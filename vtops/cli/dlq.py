"""`vtops dlq show|redrive`: dead letters by reason, and sending them back after a fix."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error
from vtops.cli.replay_options import STREAMS_HELP
from vtops.replay.times import CITY_TIME_HELP

if TYPE_CHECKING:
    from vtops.replay.dead_letters import DeadLetter, Redrive
    from vtops.replay.selection import StreamTopics
    from vtops.settings import Settings

app = typer.Typer(
    rich_markup_mode=None,
    help="Inspect dead letters and send them back to their input topic.",
    no_args_is_help=True,
)

SINCE_HELP = (
    "only letters the worker wrote at or after this time (the letter's own timestamp: a "
    f"letter may have no readable event time), e.g. 2026-11-30T08:00:00+07:00; {CITY_TIME_HELP}"
)
REASON_HELP = "only letters whose reason contains this text (case-insensitive), e.g. camera_id"


def _letters(
    settings: Settings, chosen: list[StreamTopics], since: str | None, reason: str | None
) -> list[DeadLetter]:
    from city.profile import load_city_profile
    from vtops.replay.dead_letters import read_dead_letters
    from vtops.replay.times import epoch_ms, parse_instant

    tz = load_city_profile(settings.stream.city_profile).tz
    since_ms = None if since is None else epoch_ms(parse_instant("--since", since, tz))
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
    from rich.table import Table

    from city.profile import load_city_profile
    from vtops.replay.selection import chosen_streams
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        letters = _letters(settings, chosen_streams(settings, streams), since, reason)
    except VtopsError as error:
        exit_with_error(str(error))
    if output is Output.json:
        console.print_json(json.dumps([letter.summary() for letter in letters], default=str))
        return
    # Every cell is Text, never markup: reasons and topics quote what producers sent.
    by_reason = Table("letters", "reason")
    by_reason.columns[1].overflow = "fold"
    for text, n in Counter(letter.reason for letter in letters).most_common():
        by_reason.add_row(str(n), Text(text))
    console.print(by_reason)
    tz = load_city_profile(settings.stream.city_profile).tz
    listed = Table("message (topic/partition/offset)", "received at", "reason")
    listed.columns[0].overflow = listed.columns[2].overflow = "fold"
    listed.columns[1].no_wrap = True
    for letter in letters[-limit:] if limit > 0 else []:
        row = letter.summary()
        redrive_of = "" if letter.redrive_of is None else f" (re-drive of {letter.redrive_of})"
        listed.add_row(
            Text("/".join(str(row[k]) for k in ("source_topic", "partition", "offset"))),
            Text(_city_time(row["received_at"], tz)),
            Text(letter.reason + redrive_of),
        )
    console.print(listed)
    console.print(f"{len(letters)} dead letters")


def _city_time(received_at: object, tz: tzinfo) -> str:
    """A letter's `received_at` in city time to the second, as it is when it is no time."""
    try:
        at = datetime.fromisoformat(str(received_at))
    except ValueError:
        return str(received_at)
    return at.astimezone(tz).isoformat(timespec="seconds") if at.tzinfo else str(received_at)


@app.command("redrive")
def redrive_letters(
    since: str | None = typer.Option(None, help=SINCE_HELP),
    reason: str | None = typer.Option(None, help=REASON_HELP),
    streams: str | None = typer.Option(None, help=STREAMS_HELP),
    again: bool = typer.Option(
        False, "--again", help="send originals that were re-driven before once more"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="check the letters as the worker would and send nothing"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    output: OutputOption = Output.table,
) -> None:
    """Send the chosen dead letters back to their input topic with their original key,
    headers and timestamp; the worker deduplicates them like any other event. Each original
    message goes back once (a letter of a re-driven copy names its original), unless --again."""
    from vtops.replay.dead_letters import plan_redrive, redrive
    from vtops.replay.redrive_log import record_redriven, redriven_originals
    from vtops.replay.selection import chosen_streams
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        chosen = chosen_streams(settings, streams)
        letters = _letters(settings, chosen, since, reason)
        redriven = redriven_originals(settings.kafka)
        planned = plan_redrive(letters, chosen, redriven, again, settings.stream.max_clock_skew_s)
    except VtopsError as error:
        exit_with_error(str(error))
    sending = [p for p in planned if p.topic is not None]
    if output is Output.table:
        _print_plan(planned, sending, dry_run)
    if dry_run or not sending:
        if output is Output.json:
            console.print_json(json.dumps(_summary(letters, planned, sending, 0, dry_run)))
        else:
            console.print("Dry run: nothing sent." if dry_run else "Nothing to re-drive.")
        return
    if not yes and not typer.confirm(f"Re-drive {len(sending)} dead letters?"):
        raise typer.Exit(1)
    try:
        sent = redrive(settings.kafka, planned)
        record_redriven(settings.kafka, (p.letter.original for p in sending), redriven)
    except VtopsError as error:
        exit_with_error(str(error))
    if output is Output.json:
        console.print_json(json.dumps(_summary(letters, planned, sending, sent, dry_run)))
    else:
        console.print(f"Re-drove {sent} dead letters.")


def _print_plan(planned: list[Redrive], sending: list[Redrive], dry_run: bool) -> None:
    skipped = Counter(p.skipped for p in planned if p.skipped is not None)
    for reason, n in skipped.most_common():
        console.print(f"skipped {n}: {reason}", markup=False)
    counts = Counter(p.topic for p in sending)
    for topic, n in sorted(counts.items()):
        console.print(f"{'would send' if dry_run else 'sending'} {n} to {topic}", markup=False)
    if sending:
        again = Counter(p.fails_again for p in sending if p.fails_again is not None)
        console.print(
            f"checked as the worker checks them: {len(sending) - again.total()} valid now, "
            f"{again.total()} would be dead letters again",
            markup=False,
        )
        for text, n in again.most_common():
            console.print(f"  {n} × {text}", markup=False)


def _summary(
    letters: list[DeadLetter],
    planned: list[Redrive],
    sending: list[Redrive],
    sent: int,
    dry_run: bool,
) -> dict[str, object]:
    again = Counter(p.fails_again for p in sending if p.fails_again is not None)
    return {
        "dry_run": dry_run,
        "letters": len(letters),
        "originals": len(planned),
        "to_send": len(sending),
        "sent": sent,
        "valid_now": len(sending) - again.total(),
        "fails_again": dict(again),
        "skipped": {p.letter.original: p.skipped for p in planned if p.skipped is not None},
    }
