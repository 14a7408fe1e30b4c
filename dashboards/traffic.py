"""Traffic operations: where the city is moving, where it is stuck, and which cameras are blind."""

from __future__ import annotations

from statistics import fmean

from city.profile import CityProfile
from dashboards import traffic_sql as q
from dashboards.layout import Layout, dashboard
from dashboards.panels import (
    JSON,
    bargauge,
    custom_variable,
    field_config,
    geomap,
    override,
    piechart,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)

UID = "vtops-traffic"

# Volume/capacity of a camera's road in the last minutes, in percent.
SATURATION_STEPS = ((None, "green"), (60.0, "yellow"), (85.0, "orange"), (100.0, "red"))
HEALTH_COLORS = {
    "ok": "green",
    "degraded": "yellow",
    "silent": "orange",
    "offline": "red",
    "tampered": "purple",
}


def _by_label(label: str, unit: str = "short") -> JSON:
    """Series named by their ward/camera label rather than `measure label=value`."""
    config = field_config(unit=unit, color_mode="palette-classic")
    config["defaults"]["displayName"] = f"${{__field.labels.{label}}}"
    return config


def _coloured(column: str, colors: dict[str, str], cell: str) -> JSON:
    """A table column whose text values map to colours."""
    options = {k: {"color": v, "index": i} for i, (k, v) in enumerate(colors.items())}
    return override(
        column,
        {
            "custom.cellOptions": {"type": cell},
            "mappings": [{"type": "value", "options": options}],
        },
    )


def _stats(layout: Layout) -> None:
    layout.add(
        stat(
            "Vehicles, last 5 min",
            q.VEHICLES_NOW,
            description="Passages counted by the selected cameras in the last five minute windows.",
            fields=field_config(steps=((None, "blue"),)),
        ),
        4,
        4,
    )
    layout.add(
        stat(
            "PCU per minute, last 5 min",
            q.PCU_NOW,
            description="Passenger-car units per minute (motorbike 0.3, car 1, bus/truck 2.5).",
            fields=field_config(steps=((None, "blue"),), decimals=1),
        ),
        4,
        4,
    )
    layout.add(
        stat(
            "Average speed, last 15 min",
            q.SPEED_NOW,
            description="Mean speed of passages that carried one, weighted by vehicles; "
            "under 10 km/h the streets are jammed.",
            fields=field_config(
                unit="velocitykmh", steps=((None, "red"), (10.0, "orange"), (20.0, "green"))
            ),
        ),
        4,
        4,
    )
    layout.add(
        stat(
            "Open traffic alerts",
            q.OPEN_ALERTS_COUNT,
            description="Anomalies (congestion, flow drop, camera offline) still open, "
            "by severity.",
            fields=field_config(
                steps=((None, "green"), (1.0, "red")),
                overrides=[
                    override(
                        "warning", {"thresholds": thresholds((None, "green"), (1.0, "orange"))}
                    ),
                ],
            ),
        ),
        4,
        4,
    )
    layout.add(
        stat(
            "Cameras silent / offline",
            q.CAMERAS_SILENT,
            description="Silent: no flow and no status for $silent_minutes minutes. "
            "Offline: the camera said so after its last flow.",
            fields=field_config(steps=((None, "green"), (1.0, "orange"), (10.0, "red"))),
        ),
        4,
        4,
    )
    layout.add(
        stat(
            "Violations in range",
            q.VIOLATIONS_COUNT,
            description="Detected offences in the selected time range (all types).",
            fields=field_config(steps=((None, "purple"),)),
        ),
        4,
        4,
    )


def _map(layout: Layout, profile: CityProfile) -> None:
    center = (
        round(fmean(c.lat for c in profile.cameras), 4),
        round(fmean(c.lon for c in profile.cameras), 4),
    )
    layout.add(
        geomap(
            "Cameras: road saturation now",
            q.CAMERA_MAP,
            description="Each camera at its position; colour = PCU per lane-hour of the last "
            f"{q.NOW_MINUTES} minutes against {q.LANE_CAPACITY_PCU_PER_HOUR} PCU/lane/h "
            "(100% = at capacity), size = PCU per minute. Grey: no flow in those minutes.",
            center=center,
            zoom=12.5,
            color_field="saturation_pct",
            size_field="pcu_per_minute",
            fields=field_config(unit="percent", steps=SATURATION_STEPS, decimals=0),
        ),
        14,
        15,
    )
    layout.add(
        table(
            "Open alerts",
            q.OPEN_ALERTS,
            description="Where to send someone: open anomalies, critical first.",
            fields=field_config(
                overrides=[
                    _coloured(
                        "severity",
                        {"critical": "red", "warning": "orange", "info": "blue"},
                        "color-text",
                    ),
                ]
            ),
        ),
        10,
        15,
    )


def _flows(layout: Layout) -> None:
    for label, who in (("ward", "ward"), ("camera_id", "camera (10 busiest)")):
        layout.add(
            timeseries(
                f"Vehicles per minute by {who}",
                q.flow_by(label, "vehicles"),
                description="Passages per minute, averaged over each bucket of the graph.",
                fields=_by_label(label),
            ),
            12,
            8,
        )
        layout.add(
            timeseries(
                f"PCU per minute by {who}",
                q.flow_by(label, "pcu"),
                description="Passenger-car units per minute: the load on the road, not the count.",
                fields=_by_label(label),
            ),
            12,
            8,
        )
    layout.add(
        timeseries(
            "Average speed by ward",
            q.SPEED_BY_WARD,
            description="Vehicle-weighted mean speed; a falling line is a forming jam.",
            fields=_by_label("ward", unit="velocitykmh"),
        ),
        12,
        8,
    )
    layout.add(
        piechart(
            "Vehicle class mix",
            q.CLASS_MIX,
            description="Share of motorbikes, cars, buses, trucks, bicycles in the time range.",
        ),
        6,
        8,
    )
    layout.add(
        timeseries(
            "Class mix over time",
            q.CLASS_MIX_OVER_TIME,
            description="Share of each vehicle class per bucket (stacked to 100%).",
            stacking="percent",
        ),
        6,
        8,
    )


def _violations(layout: Layout) -> None:
    layout.add(
        timeseries(
            "Violations by type",
            q.VIOLATIONS_BY_TYPE,
            description="Detected offences per bucket (Decree 168/2024 types).",
            fields=_by_label("violation_type"),
            style="bars",
            stacking="normal",
        ),
        12,
        9,
    )
    layout.add(
        table(
            "Violations by camera",
            q.VIOLATIONS_BY_CAMERA,
            description="The 20 cameras with most offences in the range, by type. "
            "Plates are not shown: the dashboards' user cannot read them.",
        ),
        12,
        9,
    )


def _health(layout: Layout) -> None:
    layout.add(
        table(
            "Cameras needing attention",
            q.CAMERAS_NEEDING_ATTENTION,
            description="Every camera not healthy now: tampered, offline, silent "
            "($silent_minutes min without flow or status) or degraded.",
            fields=field_config(
                overrides=[
                    _coloured("health", HEALTH_COLORS, "color-background"),
                ]
            ),
        ),
        16,
        10,
    )
    layout.add(
        bargauge(
            "Cameras by health",
            q.CAMERAS_BY_HEALTH,
            description="How many cameras of the selection are ok, degraded, silent, offline.",
            fields=field_config(steps=((None, "blue"),)),
        ),
        8,
        10,
    )


def build(profile: CityProfile) -> JSON:
    layout = Layout()
    layout.row("Now")
    _stats(layout)
    layout.row("Map and alerts")
    _map(layout, profile)
    layout.row("Flow")
    _flows(layout)
    layout.row("Violations")
    _violations(layout)
    layout.row("Camera health")
    _health(layout)
    variables = [
        query_variable("ward", "Ward", q.WARD_VARIABLE, description="Wards before July 2025"),
        query_variable("camera", "Camera", q.CAMERA_VARIABLE, description="Cameras of the wards"),
        custom_variable(
            "silent_minutes",
            "Silent after (min)",
            ["5", "10", "15", "30", "60"],
            default="10",
            description="Minutes without flow or status after which a camera counts as silent",
        ),
    ]
    return dashboard(
        UID,
        "Vũng Tàu · Traffic operations",
        description="Live flow, congestion, violations and camera health of the city's "
        f"{len(profile.cameras)} field cameras.",
        tags=["traffic", "live"],
        layout=layout,
        variables=variables,
        refresh="10s",
        time_from="now-3h",
    )
