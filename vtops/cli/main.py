"""The `vtops` command: one module per command group, registered here explicitly."""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Annotated, Any

import typer

from city.exceptions import VtopsError
from vtops.cli import (
    alerts,
    archive,
    baselines,
    clickhouse,
    dashboards,
    demo,
    dlq,
    kafka,
    migrate,
    offsets,
    query,
    report,
    reprocess,
    settings,
    simulate,
    topics,
    worker,
)
from vtops.cli.output import USAGE_ERROR, console, print_error


class _Vtops(typer.Typer):
    """The app: a bad setting is one line and exit 2, whichever command read it first."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except VtopsError as error:
            # Imported here, as every command's own imports (`vtops --help` stays fast): a
            # SettingsError comes from that module, so it is loaded by then.
            from vtops.settings import SettingsError

            if not isinstance(error, SettingsError):
                raise
            print_error(str(error))
            raise SystemExit(USAGE_ERROR) from None


# Plain help, as every command group's: the help texts hold no markup, and Rich would read
# `KIND:CAMERA:START` as the emoji :camera:.
app = _Vtops(
    help="vungtau-ops: the Vũng Tàu operations center's data pipeline.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _print_version(asked: bool) -> None:
    if asked:
        console.print(f"vtops {package_version('vungtau-ops')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """vungtau-ops: the Vũng Tàu operations center's data pipeline."""


app.add_typer(settings.app, name="settings")
app.add_typer(kafka.app, name="kafka")
app.add_typer(clickhouse.app, name="clickhouse")
app.add_typer(topics.app, name="topics")
app.add_typer(dashboards.app, name="dashboards")
app.add_typer(baselines.app, name="baselines")
app.add_typer(alerts.app, name="alerts")
app.add_typer(offsets.app, name="offsets")
app.add_typer(archive.app, name="archive")
app.add_typer(dlq.app, name="dlq")
app.command("worker")(worker.worker)
app.command("simulate")(simulate.simulate)
app.command("query")(query.query)
app.command("reprocess")(reprocess.reprocess)
app.command("migrate")(migrate.migrate_store)
app.command("report")(report.report)
app.command("demo")(demo.demo)
