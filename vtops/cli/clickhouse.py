"""`vtops clickhouse start|stop|status`: a local ClickHouse server for several workers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from city.exceptions import VtopsError
from vtops.cli.local_service import show_status, stop_service
from vtops.cli.output import Output, OutputOption, console, exit_with_error

if TYPE_CHECKING:
    from vtops.clickhouse import LocalClickHouse

app = typer.Typer(
    rich_markup_mode=None,
    help="Run a local ClickHouse server on 127.0.0.1 (for a laptop and tests; production "
    "uses a real clickhouse-server).",
    no_args_is_help=True,
)


def _server() -> LocalClickHouse:
    from vtops.clickhouse import LocalClickHouse
    from vtops.settings import get_settings

    return LocalClickHouse(get_settings().storage)


@app.command("start")
def start(
    timeout: float = typer.Option(30.0, help="seconds to wait for the server to answer"),
) -> None:
    """Start the server (idempotent) and print the VTOPS_CLICKHOUSE_URL that reaches it."""
    server = _server()
    try:
        began = time.monotonic()
        outcome = server.start(timeout_s=timeout)
    except (VtopsError, OSError) as exc:
        exit_with_error(str(exc))
    report = server.status()
    where = f"HTTP {report.http_port}, native TCP {report.tcp_port}"
    if outcome == "already running":
        console.print(f"ClickHouse is already running ({where}).")
    else:
        console.print(
            f"ClickHouse started ({where}) in {time.monotonic() - began:.1f} s, data in "
            f"{report.data_dir}.",
            soft_wrap=True,
        )
    console.print(f"export VTOPS_CLICKHOUSE_URL={report.url}", soft_wrap=True)


@app.command("stop")
def stop() -> None:
    """Stop the server this data dir started (its data stays)."""
    stop_service("ClickHouse", _server().stop)


@app.command("status")
def status(output: OutputOption = Output.table) -> None:
    """Whether the server answers, its pid, ports, URL and data dir; exit 3 if not running."""
    report = _server().status()
    fields = {
        "state": report.state,
        "pid": report.pid,
        "http_port": report.http_port,
        "tcp_port": report.tcp_port,
        "url": report.url,
        "data_dir": str(report.data_dir),
        "log_file": str(report.log_file),
    }
    show_status(fields, output)
