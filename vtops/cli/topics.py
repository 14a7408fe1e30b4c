"""`vtops topics create|list`: the pipeline's topics (contract section 3, and the worker's re-key
topics) on the configured broker."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error

app = typer.Typer(
    rich_markup_mode=None, help="Create and inspect the contract's topics.", no_args_is_help=True
)


@app.command("create")
def create() -> None:
    """Create every missing topic of the pipeline (the contract's and the worker's re-key
    topics) with its kind's retention, and set the retention of those that exist (idempotent)."""
    from city.profile import load_city_profile

    # Here, not above: the stream definitions bring Faust, which other commands do not need.
    from streams.app import consumed_topics
    from vtops.kafka import contract_topic_names, ensure_topics
    from vtops.kafka.retention import align_retention, retention_ms, topic_kind
    from vtops.settings import get_settings

    settings = get_settings()
    kafka = settings.kafka
    try:
        profile = load_city_profile(settings.stream.city_profile)
        internal = consumed_topics(kafka, settings.stream, profile)
        created = ensure_topics(kafka, internal)
        changed = align_retention(kafka, [*contract_topic_names(kafka), *internal])
    except VtopsError as exc:
        exit_with_error(str(exc))
    for name in created:
        retention = _days(retention_ms(kafka, topic_kind(kafka, name)))
        console.print(f"created {name} ({kafka.partitions} partitions, retention {retention})")
    for change in changed:
        before = "forever" if change.before_ms is None else _days(change.before_ms)
        console.print(
            f"retention of {change.topic} ({change.kind}): {before} → {_days(change.after_ms)}"
        )
    if not created and not changed:
        console.print("All topics exist already, with their retention.")


def _days(ms: int) -> str:
    from vtops.kafka.retention import DAY_MS

    days = ms / DAY_MS
    return f"{days:g} day" if days == 1 else f"{days:g} days"


@app.command("list")
def list_topics(output: OutputOption = Output.table) -> None:
    """Each contract topic, whether it exists, its partition count and retention."""
    from rich.table import Table

    from vtops.kafka import describe_contract_topics
    from vtops.settings import get_settings

    kafka = get_settings().kafka
    try:
        states = describe_contract_topics(kafka)
    except VtopsError as exc:
        exit_with_error(str(exc))
    if output is Output.json:
        console.print_json(json.dumps([asdict(s) for s in states]))
        return
    table = Table("topic", "exists", "partitions", "retention")
    for state in states:
        partitions = "-" if state.partitions is None else str(state.partitions)
        if not state.exists:
            retention = "-"
        elif state.retention_ms is None:
            retention = "forever"
        else:
            retention = _days(state.retention_ms)
        table.add_row(state.name, "yes" if state.exists else "no", partitions, retention)
    console.print(table)
