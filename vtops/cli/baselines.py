"""`vtops baselines`: learn the traffic baselines from history, and show a camera's day."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import typer

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error

# Minutes of history a slot needs before its own baseline replaces the prior.
DEFAULT_MIN_SAMPLES = 15

app = typer.Typer(
    rich_markup_mode=None, help="Traffic baselines for the anomaly rules.", no_args_is_help=True
)


@app.command("refresh")
def refresh(
    min_samples: int = typer.Option(
        DEFAULT_MIN_SAMPLES, min=1, help="minutes of history a slot needs, else the prior"
    ),
    effective_from: str | None = typer.Option(
        None,
        help="event time from which the new version judges, ISO 8601 (no zone: the city's); "
        "default: now plus twice VTOPS_BASELINES_REFRESH_MINUTES, so that every running "
        "worker has read it before then",
    ),
    output: OutputOption = Output.table,
) -> None:
    """Learn every camera's baselines from traffic_flow_1m (minutes in ended alerts left out)
    as a new version; earlier versions stay for the minutes before it takes effect."""
    from city.profile import load_city_profile
    from vtops.baselines import refresh_baselines
    from vtops.cli.store import opened_store
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        profile = load_city_profile(settings.stream.city_profile)
    except VtopsError as error:
        exit_with_error(str(error))
    if effective_from is None:
        lead = timedelta(minutes=2 * settings.stream.baselines_refresh_minutes)
        effective = (datetime.now(profile.tz) + lead).replace(microsecond=0)
    else:
        try:
            effective = datetime.fromisoformat(effective_from)
        except ValueError:
            exit_with_error(f"--effective-from: not an ISO 8601 time: {effective_from!r}")
        if effective.tzinfo is None:
            effective = effective.replace(tzinfo=profile.tz)
    with opened_store() as (client, database):
        summary = refresh_baselines(
            client, database, profile, min_samples=min_samples, effective_from=effective
        )
    report = {
        "version": summary.version,
        "effective_from": summary.effective_from.isoformat(),
        "slots_from_history": summary.from_history,
        "slots_from_priors": summary.from_priors,
        "history_days": dict(summary.history_days),
    }
    if output is Output.json:
        console.print_json(json.dumps(report))
        return
    days = ", ".join(f"{n} {kind}" for kind, n in summary.history_days.items()) or "none"
    console.print(
        f"baselines version {summary.version}, effective from "
        f"{summary.effective_from.isoformat()}: {summary.from_history:,} slots from history, "
        f"{summary.from_priors:,} from priors (days of history: {days})",
        markup=False,
    )


@app.command("show")
def show(
    camera: str = typer.Option(..., help="camera id, e.g. VT-CAM-002"),
    output: OutputOption = Output.table,
) -> None:
    """A camera's baselines: every 15-minute slot of each kind of day."""
    from rich import box
    from rich.table import Table

    from vtops.baselines import camera_baselines
    from vtops.cli.store import opened_store

    with opened_store() as (client, database):
        rows = camera_baselines(client, database, camera)
    if not rows:
        exit_with_error(f"--camera: no baselines for {camera!r} (run `vtops baselines refresh`)")
    if output is Output.json:
        # The effective time as ISO 8601, the one value JSON has no type for.
        console.print_json(json.dumps(rows, default=datetime.isoformat))
        return
    version, effective = rows[0]["version"], rows[0]["effective_from"].isoformat()
    table = Table(
        "day", "time", "veh/min", "MAD", "km/h", "MAD", "viol %", "moto %", "samples", "source",
        title=f"{camera} baselines, version {version} (effective from {effective})",
        box=box.SIMPLE_HEAD, pad_edge=False,
    )  # fmt: skip
    for row in rows:
        table.add_row(*_cells(row))
    console.print(table)


def _cells(row: dict[str, Any]) -> list[str]:
    from streams.traffic.anomaly.baselines import SLOT_MINUTES

    start = row["slot"] * SLOT_MINUTES
    speed = row["speed_median"]
    return [
        row["day_type"],
        f"{start // 60:02d}:{start % 60:02d}",
        f"{row['vehicles_median']:.1f}",
        f"{row['vehicles_mad']:.1f}",
        "—" if speed is None else f"{speed:.1f}",
        "—" if speed is None else f"{row['speed_mad']:.1f}",
        f"{100 * row['violation_rate']:.2f}",
        f"{100 * row['motorbike_share']:.1f}",
        str(row["samples"]),
        row["source"],
    ]
