"""`vtops dashboards build|push|prepare-store`: the operations screens as code.

`build` writes the dashboards' JSON and Grafana's provisioning files; `push` publishes the
same to a running Grafana (VTOPS_GRAFANA_URL, VTOPS_GRAFANA_TOKEN) and, unless told not
to, prepares the store first; `prepare-store` alone creates the tables, loads the city's
dimension tables and, given VTOPS_GRAFANA_CLICKHOUSE_PASSWORD and a ClickHouse server,
the read-only user Grafana logs in with (by SQL; on the local server, in its users config).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error

if TYPE_CHECKING:
    from city.profile import CityProfile
    from sinks.settings import StorageSettings
    from vtops.clickhouse import LocalClickHouse
    from vtops.settings import Settings

app = typer.Typer(
    rich_markup_mode=None,
    help="Build and publish the Grafana dashboards and alert rules.",
    no_args_is_help=True,
)

DEFAULT_HOST = "clickhouse"  # the compose service, as Grafana's container sees it
DEFAULT_PORT = 8123


def _profile(settings: Settings) -> CityProfile:
    from city.profile import load_city_profile

    try:
        return load_city_profile(settings.stream.city_profile)
    except VtopsError as exc:
        exit_with_error(str(exc))


@app.command("build")
def build(
    json_dir: Annotated[
        Path | None,
        typer.Option(help="where the dashboard JSON goes", show_default="dashboards/json"),
    ] = None,
    provisioning_dir: Annotated[
        Path | None,
        typer.Option(
            help="Grafana's provisioning folder", show_default="infra/grafana/provisioning"
        ),
    ] = None,
) -> None:
    """Write dashboards/json/*.json and the datasource, dashboards and alerting YAML, for
    the city profile and VTOPS_CLICKHOUSE_DATABASE."""
    from dashboards.build import JSON_DIR, PROVISIONING_DIR, write_all
    from vtops.settings import get_settings

    settings = get_settings()
    written = write_all(
        _profile(settings),
        settings.storage.clickhouse_database,
        json_dir or JSON_DIR,
        provisioning_dir or PROVISIONING_DIR,
    )
    for path in written:
        console.print(f"wrote {path}")
    if not written:
        console.print("Every file is up to date.")


def _prepare_store(settings: Settings, profile: CityProfile) -> None:
    from dashboards.dimensions import load_dimensions
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.grafana_access import (
        GRAFANA_USER,
        grant_grafana_access,
        password_hash,
        visible_columns,
    )
    from sinks.clickhouse.grafana_users_xml import grafana_users_xml
    from sinks.clickhouse.migrations import migrate

    storage = settings.storage
    password = settings.grafana.grafana_clickhouse_password
    client = connect(storage)
    try:
        migrate(client, storage.clickhouse_database, timezone=profile.timezone)
        loaded = load_dimensions(client, storage.clickhouse_database, profile)
        console.print("dimensions loaded: " + ", ".join(f"{t} {n}" for t, n in loaded.items()))
        if storage.embedded:
            console.print(
                "embedded store: no users to create (Grafana reads a ClickHouse "
                "server; set VTOPS_CLICKHOUSE_URL)"
            )
        elif password is None:
            console.print(
                "VTOPS_GRAFANA_CLICKHOUSE_PASSWORD is not set: the read-only "
                "Grafana user was left as it is"
            )
        elif (local := _local_server(storage)) is not None:
            users = grafana_users_xml(
                storage.clickhouse_database,
                password_hash(password),
                visible_columns(client, storage.clickhouse_database),
            )
            client.close()  # the server may restart to read the user
            changed = local.declare_users(GRAFANA_USER, users)
            console.print(
                f"read-only user {GRAFANA_USER}: declared in the local server's users config"
                + (" (server restarted on the same ports)" if changed else ", unchanged")
            )
        else:
            grant_grafana_access(client, storage.clickhouse_database, password)
            console.print(f"read-only user {GRAFANA_USER}: granted")
    finally:
        client.close()


def _local_server(storage: StorageSettings) -> LocalClickHouse | None:
    """The local server of this data dir (`vtops clickhouse start`) if VTOPS_CLICKHOUSE_URL
    points at it: it keeps users in its config, where SQL cannot write."""
    from vtops.clickhouse import LocalClickHouse

    if storage.clickhouse_url is None:
        return None
    url = urlsplit(storage.clickhouse_url.get_secret_value())
    local = LocalClickHouse(storage)
    report = local.status()
    ours = report.state == "running" and url.port == report.http_port
    return local if ours and url.hostname in ("127.0.0.1", "localhost") else None


@app.command("prepare-store")
def prepare_store() -> None:
    """Create the tables, load the city dimensions and grant Grafana's read-only user."""
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        _prepare_store(settings, _profile(settings))
    except VtopsError as exc:
        exit_with_error(str(exc))


def _without_credentials(url: str) -> str:
    """scheme://host:port of a URL that may carry a user and password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _clickhouse_address(
    storage: StorageSettings, host: str | None, port: int | None
) -> tuple[str, int]:
    """Where Grafana reaches ClickHouse: the options, else the host of VTOPS_CLICKHOUSE_URL."""
    if storage.clickhouse_url is not None:
        url = urlsplit(storage.clickhouse_url.get_secret_value())
        host = host or url.hostname
        port = port or url.port
    return host or DEFAULT_HOST, port or DEFAULT_PORT


@app.command("push")
def push(
    no_store: Annotated[
        bool,
        typer.Option(
            "--no-store",
            help="push only: do not first migrate, load the dimension tables and grant the "
            "read-only user",
        ),
    ] = False,
    clickhouse_host: Annotated[
        str | None,
        typer.Option(
            help="ClickHouse host as Grafana sees it (default: from VTOPS_CLICKHOUSE_URL)"
        ),
    ] = None,
    clickhouse_port: Annotated[int | None, typer.Option(help="its HTTP port")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Upsert the folder, datasource, dashboards, alert rules, contact point and notification
    policies in Grafana (idempotent)."""
    from grafana_client.api import GrafanaApi

    from dashboards.build import build_dashboards
    from dashboards.exceptions import GrafanaPushError
    from dashboards.provisioning import CONTACT_POINT, alert_rules, receivers
    from dashboards.push import push_all
    from vtops.settings import get_settings

    settings = get_settings()
    grafana = settings.grafana
    if not grafana.grafana_url:
        exit_with_error(
            "VTOPS_GRAFANA_URL is not set: point it at Grafana, e.g. http://localhost:3000"
        )
    if grafana.grafana_token is None or not grafana.grafana_token.get_secret_value():
        exit_with_error(
            "VTOPS_GRAFANA_TOKEN is not set: create a service account token "
            "with the Admin role in Grafana"
        )
    profile = _profile(settings)
    host, port = _clickhouse_address(settings.storage, clickhouse_host, clickhouse_port)
    password = grafana.grafana_clickhouse_password
    webhook = grafana.alert_webhook_url
    server = _without_credentials(grafana.grafana_url)
    try:
        if not no_store:
            _prepare_store(settings, profile)
        api = GrafanaApi.from_url(
            grafana.grafana_url, credential=grafana.grafana_token.get_secret_value()
        )
        database = settings.storage.clickhouse_database
        report = push_all(
            api,
            list(build_dashboards(profile, database).values()),
            clickhouse_host=host,
            clickhouse_port=port,
            clickhouse_password=password.get_secret_value() if password else None,
            database=database,
            rules=alert_rules(database, profile.timezone),
            receivers=receivers(
                webhook.get_secret_value() if webhook else None, grafana.alert_emails
            ),
        )
    except GrafanaPushError as exc:
        exit_with_error(f"{exc} (Grafana at {server})")
    except VtopsError as exc:
        exit_with_error(str(exc))
    if output is Output.json:
        console.print_json(json.dumps(asdict(report)))
        return
    console.print(f"Grafana at {server}")
    console.print(
        f"folder: {report.folder}; datasource (ClickHouse at {host}:{port}): {report.datasource}"
    )
    for uid, state in report.dashboards.items():
        console.print(f"dashboard {uid}: {state}")
    for uid, state in report.alert_rules.items():
        console.print(f"alert rule {uid}: {state}")
    for uid, state in report.contact_points.items():
        console.print(f"contact point {CONTACT_POINT} receiver {uid}: {state}")
    console.print(f"notification policies: {report.notification_policy}", markup=False)
    if not report.contact_points:
        console.print(
            "note: set VTOPS_ALERT_WEBHOOK_URL or VTOPS_ALERT_EMAILS to route the alerts; "
            "until then they go to Grafana's default policy"
        )
    if password is None:
        console.print(
            "note: VTOPS_GRAFANA_CLICKHOUSE_PASSWORD is not set; the datasource "
            "keeps the password it had"
        )
