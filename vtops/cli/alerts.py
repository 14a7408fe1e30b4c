"""`vtops alerts`: what an operator says about the detector's alerts."""

from __future__ import annotations

import json

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error

app = typer.Typer(
    rich_markup_mode=None, help="Traffic alerts: confirm real incidents.", no_args_is_help=True
)


@app.command("confirm")
def confirm(
    alert_id: str = typer.Argument(..., help="the alert's id (alert_id in traffic_alerts)"),
    note: str = typer.Option("", help="why, or a ticket reference (at most 500 characters)"),
    output: OutputOption = Output.table,
) -> None:
    """Confirm an alert as a real incident: `vtops baselines refresh` then leaves its minutes
    out of what it learns, even while it is still open."""
    from datetime import datetime

    from city.profile import load_city_profile
    from vtops.cli.store import opened_store
    from vtops.incidents import confirm_incident
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        profile = load_city_profile(settings.stream.city_profile)
    except VtopsError as error:
        exit_with_error(str(error))
    with opened_store() as (client, database):
        try:
            incident = confirm_incident(client, database, alert_id, note, datetime.now(profile.tz))
        except VtopsError as error:
            exit_with_error(str(error))
    if output is Output.json:
        report = {
            "alert_id": incident.alert_id,
            "kind": incident.kind,
            "camera_id": incident.camera_id,
            "status": incident.status,
            "first_anomalous_at": incident.first_anomalous_at.isoformat(),
            "confirmed_at": incident.confirmed_at.isoformat(),
        }
        console.print_json(json.dumps(report))
        return
    console.print(
        f"confirmed {incident.kind} on {incident.camera_id} ({incident.status}, anomalous "
        f"since {incident.first_anomalous_at:%Y-%m-%d %H:%M}) as an incident: the next "
        "`vtops baselines refresh` leaves its minutes out",
        markup=False,
    )
