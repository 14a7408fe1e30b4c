"""`vtops kafka start|stop|status`: the local single-node broker (contract section 2)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from city.exceptions import VtopsError
from vtops.cli.local_service import show_status, stop_service
from vtops.cli.output import Output, OutputOption, console, exit_with_error

if TYPE_CHECKING:
    from vtops.kafka import LocalBroker

app = typer.Typer(
    rich_markup_mode=None,
    help="Run a local single-node Kafka broker (KRaft).",
    no_args_is_help=True,
)


def _broker() -> LocalBroker:
    from vtops.kafka import LocalBroker
    from vtops.settings import get_settings

    settings = get_settings()
    return LocalBroker(settings.kafka, settings.storage)


@app.command("start")
def start(
    timeout: float = typer.Option(60.0, help="seconds to wait for the broker to answer"),
) -> None:
    """Start the broker (idempotent); fetches its jars with Maven on first use."""
    broker = _broker()
    try:
        if not broker.jars_ready():
            console.print(
                "Fetching the Kafka broker's jars with Maven (first use; may take minutes)…"
            )
        began = time.monotonic()
        outcome = broker.start(timeout_s=timeout)
    except VtopsError as exc:
        exit_with_error(str(exc))
    bootstrap = broker.kafka.kafka_bootstrap
    if outcome == "already running":
        console.print(f"Kafka is already running at {bootstrap}.")
    else:
        elapsed = time.monotonic() - began
        console.print(
            f"Kafka started at {bootstrap} in {elapsed:.1f} s (logs: {broker.log_file}).",
            soft_wrap=True,
        )


@app.command("stop")
def stop() -> None:
    """Stop the broker this data dir started (SIGTERM, then SIGKILL after 30 s)."""
    stop_service("Kafka", _broker().stop)


@app.command("status")
def status(output: OutputOption = Output.table) -> None:
    """Whether the broker answers, its pid, bootstrap address and data dir."""
    report = _broker().status()
    fields = {
        "state": report.state,
        "pid": report.pid,
        "bootstrap": report.bootstrap,
        "data_dir": str(report.data_dir),
        "log_file": str(report.log_file),
    }
    show_status(fields, output)
