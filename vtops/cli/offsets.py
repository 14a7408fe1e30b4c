"""`vtops offsets show|reset`: where the worker resumes each partition, and moving it."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from datetime import tzinfo
from typing import TYPE_CHECKING

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, errors, exit_with_error
from vtops.cli.replay_options import STREAMS_HELP, ClockOption
from vtops.replay.times import CITY_TIME_HELP, Clock

if TYPE_CHECKING:
    from vtops.replay.offsets import PartitionMove, ResetPlan, ResetTarget
    from vtops.replay.rebuild import StateRebuild
    from vtops.settings import Settings

app = typer.Typer(
    rich_markup_mode=None,
    help="The app's offsets and saved state per partition, and resets that move both.",
    no_args_is_help=True,
)


def _saved(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int] | None:
    """The saved state's offsets; None (with a warning) while a worker holds the embedded
    store."""
    from sinks.clickhouse.client import connect
    from sinks.exceptions import StoreInUseError
    from vtops.replay.saved_state import has_saved_state, saved_offsets

    storage = settings.storage
    try:
        client = connect(storage)
    except StoreInUseError:
        errors.print(
            "warning: a running worker holds the embedded store: where it resumes is unknown, "
            "lag is from the group's offsets",
            markup=False,
        )
        return None
    try:
        if not has_saved_state(client, storage.clickhouse_database):
            return {}
        return saved_offsets(client, storage.clickhouse_database, topics)
    finally:
        client.close()


@app.command("show")
def show(
    streams: str | None = typer.Option(None, help=STREAMS_HELP),
    output: OutputOption = Output.table,
) -> None:
    """Per topic (re-key topics included), how long it keeps messages, and per partition: the
    retained offsets, the group's committed offset, where the worker resumes (its saved
    state) and the lag (unread events)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError
    from rich.table import Table

    from city.clock import local_time
    from city.profile import load_city_profile
    from vtops.kafka.retention import topic_retention
    from vtops.replay.positions import positions
    from vtops.replay.selection import chosen_streams
    from vtops.settings import get_settings

    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    settings = get_settings()
    try:
        tz = load_city_profile(settings.stream.city_profile).tz
        chosen = chosen_streams(settings, streams)
        topics = [t for s in chosen for t in s.consumed]
        rekey = frozenset(s.by_group for s in chosen if s.by_group is not None)
        found = positions(settings.kafka, topics, _saved(settings, topics), rekey)
        kept = topic_retention(settings.kafka, topics)
    except VtopsError as error:
        exit_with_error(str(error))
    except ClickHouseError as error:
        exit_with_error(f"reading the saved state failed: {str(error).splitlines()[0]}")
    horizons = {topic: k.horizon_ms() for topic, k in kept.items()}

    def kept_since(topic: str) -> str | None:
        at = horizons.get(topic)
        return None if at is None else local_time(at, tz).isoformat(timespec="minutes")

    if output is Output.json:
        console.print_json(
            json.dumps(
                [{**asdict(p), "lag": p.lag, "kept_since": kept_since(p.topic)} for p in found]
            )
        )
        return
    # One table per topic, its name above it: a topic name in a column wraps at 80 columns.
    for topic in dict.fromkeys(p.topic for p in found):
        k = kept.get(topic)
        since = kept_since(topic)
        if k is None or k.retention_ms is None:
            keeps = "keeps every message"
        else:
            clock = "arrival" if k.log_append_time else "timestamp"
            keeps = f"keeps {k.retention_ms / 86_400_000:g} days by {clock}: since {since}"
        role = " (re-key)" if topic in rekey else ""
        console.print(f"{topic}{role} — {keeps}", markup=False, overflow="fold")
        table = Table("partition", "beginning", "end", "committed", "resumes at", "lag")
        for p in (p for p in found if p.topic == topic):
            table.add_row(
                str(p.partition),
                str(p.beginning),
                str(p.end),
                "-" if p.committed is None else str(p.committed),
                "?" if p.resume is None else str(p.resume),
                str(p.lag),
            )
        console.print(table)


def _target(
    to_datetime: str | None, to_earliest: bool, to_latest: bool, clock: Clock, tz: tzinfo
) -> ResetTarget:
    from vtops.replay.exceptions import ReplayError
    from vtops.replay.offsets import ResetTarget
    from vtops.replay.times import parse_instant

    chosen = [bool(to_datetime), to_earliest, to_latest]
    if sum(chosen) != 1:
        raise ReplayError("give exactly one of --to-datetime, --to-earliest, --to-latest")
    if to_datetime:
        return ResetTarget("datetime", parse_instant("--to-datetime", to_datetime, tz), clock)
    return ResetTarget("earliest" if to_earliest else "latest")


def _print_moves(moves: list[PartitionMove]) -> None:
    """Old → new per partition; a re-key topic resumes at its end, its windows rebuilt."""
    from rich.table import Table
    from rich.text import Text

    table = Table("topic", "partition", "resumes at", "group offset")
    table.columns[0].overflow = "fold"
    for m in sorted(moves, key=lambda m: (m.rekeyed, m.topic, m.partition)):
        committed = "-" if m.committed_before is None else str(m.committed_before)
        table.add_row(
            Text(m.topic + (" (re-key)" if m.rekeyed else "")),
            str(m.partition),
            f"{m.resume_before} → {m.resume_after}",
            f"{committed} → {m.resume_after}",
        )
    console.print(table)


def _selection_warning(plan: ResetPlan, target: ResetTarget) -> str | None:
    """What an engineer who typed a time did not expect: all of it, or none of it."""
    if target.at is None:
        return None
    if plan.replays_nothing:
        return (
            f"warning: no retained input message is at or after {target}: the worker resumes "
            "at the end of every input partition"
        )
    if plan.replays_everything:
        return (
            f"warning: every retained input message is at or after {target}: this is a full "
            "replay from the beginning of every input partition"
        )
    return None


def _ensure_stopped(settings: Settings, within_s: float) -> None:
    from vtops.kafka.offsets import group_stays_busy
    from vtops.replay.exceptions import GroupBusyError

    if group_stays_busy(settings.kafka, within_s=within_s):
        raise GroupBusyError(
            f"group {settings.kafka.app_id!r} has live members: stop every `vtops worker` "
            "of this app first (a reset must not move offsets and state under them)"
        )


@app.command("reset")
def reset(
    to_datetime: str | None = typer.Option(
        None,
        help="the first message whose time (see --clock) is at or after this, e.g. "
        f"2026-11-30T08:00:00+07:00; {CITY_TIME_HELP}",
    ),
    to_earliest: bool = typer.Option(
        False, "--to-earliest", help="the beginning of the retained data"
    ),
    to_latest: bool = typer.Option(
        False, "--to-latest", help="the end: skip everything not yet processed"
    ),
    clock: ClockOption = Clock.event,
    streams: str | None = typer.Option(None, help=STREAMS_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the changes and change nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    output: OutputOption = Output.table,
) -> None:
    """Move where the worker resumes, for the chosen streams: the saved state is rebuilt as it
    was just before the target, and the group's offsets follow. The worker must be stopped.
    Times are event times unless --clock kafka."""
    from concurrent.futures import ThreadPoolExecutor

    from clickhouse_connect.driver.exceptions import ClickHouseError

    from city.profile import load_city_profile
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import migrate
    from streams.engine.service import SESSION_TIMEOUT_S
    from streams.traffic.anomaly.timeline import load_baselines
    from vtops.cli.progress import events_progress
    from vtops.replay.exceptions import ReplayError
    from vtops.replay.offsets import apply_reset, plan_reset, rebuild_state
    from vtops.replay.selection import chosen_streams
    from vtops.settings import get_settings

    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    settings = get_settings()
    storage = settings.storage
    as_table = output is Output.table
    try:
        profile = load_city_profile(settings.stream.city_profile)
        target = _target(to_datetime, to_earliest, to_latest, clock, profile.tz)
        chosen_streams(settings, streams)  # an unknown --streams is refused before anything
        if not (as_table or dry_run or yes):
            raise ReplayError("--output json cannot ask: give --yes or --dry-run")
        if not dry_run:
            # A crashed worker's membership ends with its session.
            _ensure_stopped(settings, SESSION_TIMEOUT_S + 2)
        client = connect(storage)
    except VtopsError as error:
        exit_with_error(str(error))
    # The baselines' versions are read when the rebuild first needs them, one at a time.
    reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="baselines")
    try:
        migrate(client, storage.clickhouse_database, timezone=profile.timezone)
        # The traffic stream's anomaly state is rebuilt with the baselines the worker uses.
        chosen = chosen_streams(
            settings, streams, load_baselines(client, storage.clickhouse_database, reads)
        )
        plan = plan_reset(
            settings.kafka,
            client,
            storage.clickhouse_database,
            chosen,
            target,
            settings.stream.max_clock_skew_s,
        )
        warning = _selection_warning(plan, target)
        if warning is not None:
            errors.print(warning, markup=False)
        if as_table:
            console.print(f"Reset of group {settings.kafka.app_id!r} to {target}:", markup=False)
            _print_moves(plan.moves)
        if dry_run:
            _print_done(output, target, plan, None, "Dry run: nothing changed.")
            return
        if not yes and not typer.confirm("Rebuild the saved state and move the offsets?"):
            raise typer.Exit(1)
        with events_progress("rebuilding the saved state", plan.to_fold, as_table) as advance:
            rebuild = asyncio.run(rebuild_state(plan, settings.kafka, settings.stream, advance))
        _ensure_stopped(settings, 0)
        apply_reset(plan, rebuild, settings.kafka, client, storage.clickhouse_database)
    except VtopsError as error:
        exit_with_error(str(error))
    except ClickHouseError as error:
        exit_with_error(f"the saved state: {str(error).splitlines()[0]}")
    finally:
        reads.shutdown()
        client.close()
    _print_done(
        output,
        target,
        plan,
        rebuild,
        f"Done: {rebuild.messages} messages folded, {len(rebuild.rows)} state entries saved; "
        "the next `vtops worker` resumes at the new offsets.",
    )


def _print_done(
    output: Output, target: ResetTarget, plan: ResetPlan, rebuild: StateRebuild | None, text: str
) -> None:
    if output is Output.table:
        console.print(text, markup=False)
        return
    summary = {
        "target": str(target),
        "dry_run": rebuild is None,
        "moves": [asdict(m) for m in plan.moves],
        "messages_folded": None if rebuild is None else rebuild.messages,
        "state_entries": None if rebuild is None else len(rebuild.rows),
    }
    console.print_json(json.dumps(summary))
