"""`vtops archive export|import`: a stretch of the input topics to a Parquet file and back."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, errors, exit_with_error
from vtops.cli.replay_options import STREAMS_HELP, ClockOption
from vtops.replay.times import CITY_TIME_HELP, Clock

if TYPE_CHECKING:
    from vtops.replay.archive import ArchiveCounts
    from vtops.replay.archive_import import ImportPlan

app = typer.Typer(
    rich_markup_mode=None,
    help="Keep a stretch of the city's input topics in a file, and replay it.",
    no_args_is_help=True,
)


def _summary(verb: str, counts: ArchiveCounts, seconds: float, output: Output) -> None:
    if output is Output.json:
        console.print_json(
            json.dumps({"messages": counts.by_topic, "total": counts.total, "seconds": seconds})
        )
        return
    for topic, n in sorted(counts.by_topic.items()):
        console.print(f"  {topic}: {n}", markup=False)
    rate = counts.total / seconds if seconds > 0 else 0.0
    console.print(
        f"{verb} {counts.total} messages in {seconds:.1f} s ({rate:,.0f}/s)", markup=False
    )


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="the Parquet file to write")],
    from_time: str = typer.Option(
        ...,
        "--from",
        help=f"the first message whose time (see --clock) is at or after this; {CITY_TIME_HELP}",
    ),
    to_time: str = typer.Option(
        ..., "--to", help="up to (without) the first message whose time is at or after this"
    ),
    clock: ClockOption = Clock.event,
    streams: str | None = typer.Option(None, help=STREAMS_HELP),
    output: OutputOption = Output.table,
) -> None:
    """Write the input topics' messages of a time range (event time unless --clock kafka) to a
    zstd-compressed Parquet file: keys, values, headers, timestamps, partitions and offsets,
    and in its metadata the source environment, the range, its clock and the counts."""
    from city.profile import load_city_profile
    from vtops.cli.progress import events_progress
    from vtops.replay.archive import plan_export, write_archive
    from vtops.replay.selection import chosen_streams
    from vtops.replay.times import epoch_ms, parse_instant
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        tz = load_city_profile(settings.stream.city_profile).tz
        since = parse_instant("--from", from_time, tz)
        until = parse_instant("--to", to_time, tz)
        chosen = chosen_streams(settings, streams)
        plan = plan_export(
            settings.kafka,
            chosen,
            epoch_ms(since),
            epoch_ms(until),
            clock,
            settings.stream.max_clock_skew_s,
        )
        if plan.total == 0:
            errors.print(
                f"warning: no input message has its {clock.value} time in [--from, --to): the "
                "archive is empty",
                markup=False,
            )
        started = time.monotonic()
        with events_progress("exporting", plan.total, output is Output.table) as advance:
            counts = write_archive(
                settings.kafka, plan, (since.isoformat(), until.isoformat(), clock), out, advance
            )
    except VtopsError as error:
        exit_with_error(str(error))
    _summary(
        f"Wrote {out} ({clock.value} time {since.isoformat()} to {until.isoformat()}):",
        counts,
        time.monotonic() - started,
        output,
    )


def _print_plan(plan: ImportPlan) -> None:
    from rich.table import Table
    from rich.text import Text

    if plan.info is not None:
        i = plan.info
        console.print(
            f"{plan.path}: exported {i.exported_at} by vtops {i.release} from prefix "
            f"{i.source_prefix!r} at {i.source_bootstrap}, {i.clock} time {i.from_time} to "
            f"{i.to_time}",
            markup=False,
        )
    table = Table("archive topic", "messages", "to", "partitions (file → here)", "kept here")
    table.columns[2].overflow = "fold"
    for t in plan.topics:
        here = "missing" if t.partitions_here is None else str(t.partitions_here)
        kept = "-"
        if t.retention is not None:
            ms = t.retention.retention_ms
            kept = "forever" if ms is None else f"{ms / 86_400_000:g} days"
        table.add_row(
            Text(t.contract_topic),
            str(t.messages),
            Text(t.topic),
            f"{t.partitions_in_file} → {here}",
            kept,
        )
    console.print(table)


@app.command("import")
def import_(
    archive: Annotated[Path, typer.Argument(help="a file `vtops archive export` wrote")],
    speedup: float | None = typer.Option(
        None,
        help="pace by the timestamps, this many times faster than recorded (1: real "
        "time); default: as fast as the broker takes them",
    ),
    restamp: bool = typer.Option(
        False,
        "--restamp",
        help="send with the time of sending, the original in a 'vtops.original-timestamp' "
        "header: for an archive older than the topics keep messages",
    ),
    any_topic: bool = typer.Option(
        False, "--any-topic", help="also write topics that are not inputs of the contract"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="check and print the plan, send nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    output: OutputOption = Output.table,
) -> None:
    """Send an archive's messages to this environment's input topics (VTOPS_TOPIC_PREFIX),
    with their keys, headers and timestamps. Refused, before anything is sent: topics that
    are not inputs of the contract, topics that do not exist here (never created), and
    messages older than the topic keeps (--restamp)."""
    from vtops.cli.progress import events_progress
    from vtops.replay.archive_import import import_archive, plan_import
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        plan = plan_import(settings.kafka, archive, any_topic, restamp)
    except VtopsError as error:
        exit_with_error(str(error))
    for warning in plan.warnings:
        errors.print(f"warning: {warning}", markup=False)
    if output is Output.table:
        _print_plan(plan)
    if plan.refusals:
        for refusal in plan.refusals[1:]:
            errors.print(f"error: {refusal}", markup=False)
        exit_with_error(plan.refusals[0])
    if dry_run:
        if output is Output.json:
            console.print_json(
                json.dumps(
                    {"dry_run": True, "topics": [asdict(t) for t in plan.topics]}, default=str
                )
            )
        else:
            console.print(f"Dry run: {plan.total} messages would be sent; nothing sent.")
        return
    if output is Output.json and not yes:
        exit_with_error("--output json cannot ask: give --yes or --dry-run")
    if not yes and not typer.confirm(f"Send {plan.total} messages?"):
        raise typer.Exit(1)
    try:
        started = time.monotonic()
        with events_progress("importing", plan.total, output is Output.table) as advance:
            counts = import_archive(settings.kafka, plan, speedup, advance)
    except VtopsError as error:
        exit_with_error(str(error))
    _summary("Sent", counts, time.monotonic() - started, output)
