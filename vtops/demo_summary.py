"""What `vtops demo` prints at the end: the city's numbers, read back from ClickHouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from clickhouse_connect.driver.client import Client

Rows = list[tuple[object, ...]]


@dataclass(frozen=True)
class CitySummary:
    busiest_cameras: Rows
    busiest_wards: Rows
    violations_by_type: Rows
    flow_totals: tuple[object, ...]


@dataclass(frozen=True)
class PipelineCounters:
    events: int
    duplicates: int
    late: int
    invalid: int

    def __sub__(self, other: PipelineCounters) -> PipelineCounters:
        return PipelineCounters(
            self.events - other.events,
            self.duplicates - other.duplicates,
            self.late - other.late,
            self.invalid - other.invalid,
        )


def pipeline_counters(client: Client, database: str) -> PipelineCounters:
    """The pipeline's running totals over every input and partition (latest checkpoint each)."""
    row = client.query(
        "SELECT sum(e), sum(d), sum(l), sum(i) FROM (SELECT argMax(events, offset) AS e, "
        "argMax(duplicates, offset) AS d, argMax(late, offset) AS l, argMax(invalid, offset) AS i "
        f"FROM {database}.pipeline_progress FINAL GROUP BY source_topic, partition)"
    ).result_rows[0]
    return PipelineCounters(*(int(value or 0) for value in row))


def city_summary(client: Client, database: str, start: datetime, end: datetime) -> CitySummary:
    """Traffic in [start, end) of city time."""
    span = {"start": start, "end": end}
    flow = f"{database}.traffic_flow_1m FINAL"
    in_span = "window_start >= {start:DateTime} AND window_start < {end:DateTime}"

    def rows(sql: str) -> Rows:
        return [tuple(r) for r in client.query(sql, parameters=span).result_rows]

    return CitySummary(
        busiest_cameras=rows(
            f"SELECT camera_id, any(ward), sum(vehicles) AS v, round(sum(pcu), 1), "
            f"round(avg(avg_speed_kmh), 1) FROM {flow} WHERE {in_span} "
            "GROUP BY camera_id ORDER BY v DESC LIMIT 5"
        ),
        busiest_wards=rows(
            f"SELECT ward, sum(vehicles) AS v, round(sum(pcu), 1), "
            f"round(sum(motorbike) / greatest(sum(vehicles), 1) * 100, 1), sum(violations) "
            f"FROM {flow} WHERE {in_span} GROUP BY ward ORDER BY v DESC LIMIT 5"
        ),
        violations_by_type=rows(
            f"SELECT violation_type, count() AS n FROM {database}.traffic_violations FINAL "
            "WHERE ts >= {start:DateTime} AND ts < {end:DateTime} "
            "GROUP BY violation_type ORDER BY n DESC"
        ),
        flow_totals=rows(
            f"SELECT count(), uniqExact(camera_id), sum(vehicles), round(sum(pcu), 1), "
            f"sum(violations) FROM {flow} WHERE {in_span}"
        )[0],
    )


class AlertLine(NamedTuple):
    kind: str
    camera: str
    severity: str
    opened: str  # city time, HH:MM:SS
    resolved: str | None
    observed: float
    expected: float


def traffic_alerts(
    client: Client, database: str, start: datetime, end: datetime
) -> list[AlertLine]:
    """Alerts first anomalous in [start, end) of city time, with their latest state."""
    return [
        AlertLine(*r)
        for r in client.query(
            "SELECT kind, camera_id, severity, formatDateTime(opened_at, '%H:%i:%S'), "
            "formatDateTime(resolved_at, '%H:%i:%S'), "
            "observed, expected "
            f"FROM {database}.traffic_alerts_merged "
            "WHERE first_anomalous_at >= {start:DateTime} AND first_anomalous_at < {end:DateTime} "
            "ORDER BY opened_at",
            parameters={"start": start, "end": end},
        ).result_rows
    ]
