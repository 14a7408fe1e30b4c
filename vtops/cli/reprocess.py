"""`vtops reprocess`: recompute the windows of a time range and replace their rows."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, errors, exit_with_error
from vtops.cli.replay_options import STREAMS_HELP
from vtops.replay.times import CITY_TIME_HELP


def reprocess(
    from_time: str = typer.Option(
        ...,
        "--from",
        help=f"windows starting at or after this time (event time); {CITY_TIME_HELP}",
    ),
    to_time: str = typer.Option(..., "--to", help="windows starting before this (event time)"),
    streams: str | None = typer.Option(None, help=STREAMS_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="count the changes and write nothing"),
    output: OutputOption = Output.table,
) -> None:
    """Recompute from the input topics, with this release's code and settings, every window
    that starts in [--from, --to) (event time: windows are counted by the events' own time),
    and replace its row if it differs (a live worker may keep running with a ClickHouse
    server). Windows still open are left to the worker; vanished ones are deleted."""
    from clickhouse_connect.driver.exceptions import ClickHouseError
    from rich.table import Table

    from city.clock import local_time
    from city.profile import load_city_profile
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import migrate
    from streams.app import aiokafka_config
    from vtops.cli.progress import events_progress
    from vtops.replay.positions import oldest_retained_ms, retained_ranges
    from vtops.replay.replacement import TableChanges, apply_changes, key_columns
    from vtops.replay.reprocess import Recompute
    from vtops.replay.selection import chosen_streams
    from vtops.replay.times import epoch_ms, parse_instant
    from vtops.settings import get_settings

    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    settings = get_settings()
    storage, database = settings.storage, settings.storage.clickhouse_database
    try:
        profile = load_city_profile(settings.stream.city_profile)
        since = epoch_ms(parse_instant("--from", from_time, profile.tz))
        until = epoch_ms(parse_instant("--to", to_time, profile.tz))
        chosen = chosen_streams(settings, streams)
        client = connect(storage)
    except VtopsError as error:
        exit_with_error(str(error))
    changes: list[TableChanges] = []
    try:
        migrate(client, database, timezone=profile.timezone)
        ranges = retained_ranges(settings.kafka, [s.source for s in chosen])
        # A window is recomputed whole only if none of its input is past retention: it must
        # start after the oldest retained message (plus the clock skew an event may carry).
        oldest = oldest_retained_ms(settings.kafka, ranges)
        if oldest is not None:
            complete_from = oldest + settings.stream.max_clock_skew_s * 1000
            if since < complete_from:
                (console if output is Output.table else errors).print(
                    f"--from moved to {local_time(complete_from, profile.tz).isoformat()}: "
                    "earlier windows lost input to retention, and their rows are kept as they "
                    "are.",
                    markup=False,
                )
                since = complete_from
            if since >= until:
                raise VtopsError("no window in [--from, --to) still has all its input retained")
        total = sum(ranges.end[tp] - ranges.beginning[tp] for tp in ranges.end)
        started = time.monotonic()
        with events_progress("events", total, output is Output.table) as advance:
            for topics in chosen:
                keys = key_columns(client, database, topics.stream.window_table)
                recompute = Recompute(settings.stream, aiokafka_config(settings.kafka), keys)
                recomputed = asyncio.run(
                    recompute.stream(topics, ranges.beginning, ranges.end, advance)
                )
                changes.append(
                    apply_changes(
                        client, database, recomputed, keys, since, until, profile.tz, not dry_run
                    )
                )
    except VtopsError as error:
        exit_with_error(str(error))
    except ClickHouseError as error:
        exit_with_error(f"ClickHouse: {str(error).splitlines()[0]}")
    finally:
        client.close()
    elapsed = time.monotonic() - started
    span = (
        f"windows starting in [{local_time(since, profile.tz).isoformat()}, "
        f"{local_time(until, profile.tz).isoformat()})"
    )
    if not any(c.written or c.unchanged or c.open_skipped or c.removed for c in changes):
        errors.print(
            f"warning: no window of the chosen streams is in {span} (event time)", markup=False
        )
    if output is Output.json:
        summary = {
            "dry_run": dry_run,
            "events_read": total,
            "seconds": round(elapsed, 3),
            "tables": [asdict(c) for c in changes],
        }
        console.print_json(json.dumps(summary))
        return
    columns = ("written", "new", "changed", "unchanged", "removed", "open_skipped")
    headers = {"written": "to write" if dry_run else "written", "open_skipped": "left open"}
    table = Table("table", *(headers.get(c, c) for c in columns))
    table.columns[0].no_wrap = True
    for c in changes:
        table.add_row(c.table, *(str(getattr(c, n)) for n in columns))
    console.print(table)
    rate = total / max(elapsed, 1e-6)
    verb = "Dry run, nothing written" if dry_run else "Reprocessed"
    console.print(
        f"{verb}: {span} (event time); {total} events read in {elapsed:.1f} s ({rate:,.0f}/s).",
        markup=False,
    )
