"""Alerts an operator confirmed as real incidents (`vtops alerts confirm`).

A confirmation is a row of `traffic_incidents` naming the alert. `vtops baselines refresh`
(vtops/baselines.py) leaves out the minutes of every alert that ended and of every confirmed
incident, even one still open: an operator who says "this is an accident" means its minutes
are not the camera's new normal, whereas an unconfirmed alert open for days is taken for a
shift and learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clickhouse_connect.driver.client import Client

from city.exceptions import VtopsError

INCIDENTS_TABLE = "traffic_incidents"
# Enough for a sentence or a ticket reference; the table is for reasons, not reports.
MAX_NOTE_CHARS = 500


class UnknownAlertError(VtopsError):
    pass


@dataclass(frozen=True)
class ConfirmedIncident:
    alert_id: str
    kind: str
    camera_id: str
    status: str
    first_anomalous_at: datetime
    confirmed_at: datetime


def confirm_incident(
    client: Client, database: str, alert_id: str, note: str, now: datetime
) -> ConfirmedIncident:
    """Record that the alert `alert_id` is a real incident (again: the latest note stands)."""
    if len(note) > MAX_NOTE_CHARS:
        raise VtopsError(f"--note: at most {MAX_NOTE_CHARS} characters, got {len(note)}")
    rows = client.query(
        f"SELECT kind, camera_id, status, first_anomalous_at FROM {database}.traffic_alerts "
        "FINAL WHERE alert_id = {alert:String}",
        parameters={"alert": alert_id},
    ).result_rows
    if not rows:
        raise UnknownAlertError(
            f"ALERT_ID: no alert {alert_id!r} in {database}.traffic_alerts (the ids are in the "
            "alerts dashboard, on the traffic.alerts topic and in `vtops query`)"
        )
    kind, camera_id, status, first = rows[0]
    client.insert(
        f"{database}.{INCIDENTS_TABLE}",
        [[alert_id, now, note]],
        column_names=["alert_id", "confirmed_at", "note"],
    )
    return ConfirmedIncident(alert_id, kind, camera_id, status, first, now)
