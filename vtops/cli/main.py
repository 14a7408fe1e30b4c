"""The `vtops` command: one module per command group, registered here explicitly."""

from __future__ import annotations

import typer

from vtops.cli import kafka, settings, topics, worker

app = typer.Typer(help="vungtau-ops: the Vũng Tàu operations center's data pipeline.", no_args_is_help=True)
app.add_typer(settings.app, name="settings")
app.add_typer(kafka.app, name="kafka")
app.add_typer(topics.app, name="topics")
app.command("worker")(worker.worker)
