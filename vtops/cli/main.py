"""The `vtops` command: one module per command group, registered here explicitly."""

from __future__ import annotations

import typer

from vtops.cli import (
    archive,
    baselines,
    dashboards,
    demo,
    dlq,
    kafka,
    migrate,
    offsets,
    query,
    reprocess,
    settings,
    simulate,
    topics,
    worker,
)

app = typer.Typer(
    help="vungtau-ops: the Vũng Tàu operations center's data pipeline.", no_args_is_help=True
)
app.add_typer(settings.app, name="settings")
app.add_typer(kafka.app, name="kafka")
app.add_typer(topics.app, name="topics")
app.add_typer(dashboards.app, name="dashboards")
app.add_typer(baselines.app, name="baselines")
app.add_typer(offsets.app, name="offsets")
app.add_typer(archive.app, name="archive")
app.add_typer(dlq.app, name="dlq")
app.command("worker")(worker.worker)
app.command("simulate")(simulate.simulate)
app.command("query")(query.query)
app.command("reprocess")(reprocess.reprocess)
app.command("migrate")(migrate.migrate_store)
app.command("demo")(demo.demo)
