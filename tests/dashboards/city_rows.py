"""Realistic rows for every table the dashboards read, inserted straight into the store.

They hold what a short real run cannot (hours of history, open alerts, silent cameras) and a
few numbers computed here independently, which the tests compare with what the panels show;
test_pipeline_output.py checks the same queries on a real run's output.
Upsert tables get superseded versions too, so a query that forgot FINAL shows wrong numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

from clickhouse_connect.driver.client import Client

from city.profile import CityProfile
from schemas.camera import ViolationType

PCU = {"motorbike": 0.3, "car": 1.0, "bus": 2.5, "truck": 2.5, "bicycle": 0.2, "other": 1.0}
CLASS_MIX = {
    "motorbike": 0.75,
    "car": 0.17,
    "bus": 0.015,
    "truck": 0.025,
    "bicycle": 0.03,
    "other": 0.01,
}
VIOLATIONS: tuple[str, ...] = get_args(ViolationType)
METHODS = ("cash", "vietqr", "card", "ewallet", "bank_transfer")
TOPICS = ("camera.events", "payments.terminal-counts", "portal.transactions")
FLOW_MINUTES = 180


@dataclass
class Expected:
    """Independent answers for a few panels, under the range ending at `now`."""

    now: datetime
    vehicles_last_5_min: int = 0
    open_critical: int = 0
    open_warning: int = 0
    silent_cameras: set[str] = field(default_factory=set)
    offline_cameras: set[str] = field(default_factory=set)
    dlq_last_5_min: dict[str, int] = field(default_factory=dict)
    late_events: int = 0
    violations: int = 0


def _insert(client: Client, database: str, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    client.insert(
        f"{database}.{table}", [[r[c] for c in columns] for r in rows], column_names=columns
    )


def _flow(
    rng: random.Random, profile: CityProfile, now: datetime, expected: Expected
) -> list[dict[str, Any]]:
    # Cameras 1-4 fell silent 30 minutes ago; camera 5 reported offline after its last flow.
    silent = {c.camera_id for c in profile.cameras[:4]}
    offline = profile.cameras[4].camera_id
    expected.silent_cameras, expected.offline_cameras = silent, {offline}
    rows = []
    for camera in profile.cameras:
        base = 35 if camera.arterial else 8
        for minutes_ago in range(1, FLOW_MINUTES + 1):
            if camera.camera_id in silent and minutes_ago <= 30:
                continue
            if camera.camera_id == offline and minutes_ago <= 20:
                continue
            start = now - timedelta(minutes=minutes_ago)
            counts = {
                k: int(rng.gauss(base * share, 1 + base * share / 4))
                for k, share in CLASS_MIX.items()
            }
            counts = {k: max(v, 0) for k, v in counts.items()}
            vehicles = sum(counts.values())
            speed = None if vehicles == 0 or rng.random() < 0.1 else rng.uniform(12, 45)
            row = {
                "camera_id": camera.camera_id,
                "ward": camera.ward,
                "window_start": start,
                "vehicles": vehicles,
                **counts,
                "pcu": round(sum(PCU[k] * n for k, n in counts.items()), 2),
                "avg_speed_kmh": speed,
                "violations": rng.randint(0, 1),
                "final": 1,
                "version": 2,
            }
            rows.append(row)
            if minutes_ago <= 5:
                # An earlier upsert of the same window: FINAL must hide it.
                rows.append({**row, "vehicles": vehicles * 10, "final": 0, "version": 1})
                if start > now - timedelta(minutes=5):
                    expected.vehicles_last_5_min += vehicles
    return rows


def _status(profile: CityProfile, now: datetime, expected: Expected) -> list[dict[str, Any]]:
    rows = []
    for i, camera in enumerate(profile.cameras):
        rows.append(
            {
                "camera_id": camera.camera_id,
                "ward": camera.ward,
                "ts": now - timedelta(hours=2, seconds=i),
                "status": "online",
                "event_id": f"st-{i}-a",
            }
        )
    offline = next(iter(expected.offline_cameras))
    degraded = profile.cameras[10]
    rows += [
        {
            "camera_id": offline,
            "ward": profile.ward_of_camera[offline],
            "ts": now - timedelta(minutes=3),
            "status": "offline",
            "event_id": "st-off",
        },
        {
            "camera_id": degraded.camera_id,
            "ward": degraded.ward,
            "ts": now - timedelta(minutes=2),
            "status": "degraded",
            "event_id": "st-deg",
        },
    ]
    return rows


def _violations(rng: random.Random, profile: CityProfile, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(600):
        camera = rng.choice(profile.cameras)
        rows.append(
            {
                "event_id": f"vio-{i}",
                "camera_id": camera.camera_id,
                "ward": camera.ward,
                "ts": now - timedelta(seconds=rng.randint(60, FLOW_MINUTES * 60 - 60)),
                "violation_type": rng.choice(VIOLATIONS),
                "vehicle_class": rng.choice(["motorbike", "motorbike", "car", "truck"]),
                "plate": f"72-B1 {rng.randint(100, 999)}.{rng.randint(10, 99)}",
                "speed_kmh": rng.uniform(20, 90) if rng.random() < 0.5 else None,
            }
        )
    return rows


def _alerts(profile: CityProfile, now: datetime, expected: Expected) -> list[dict[str, Any]]:
    rows = []
    cams = profile.cameras

    def alert(n: int, severity: str, status: str, version: int, minutes: int) -> dict[str, Any]:
        camera = cams[20 + n]
        return {
            "alert_id": f"al-{n}",
            "camera_id": camera.camera_id,
            "ward": camera.ward,
            "kind": "congestion" if n % 2 else "flow_drop",
            "severity": severity,
            "opened_at": now - timedelta(minutes=minutes),
            "resolved_at": now if status == "resolved" else None,
            "observed": 120.0,
            "expected": 60.0,
            "score": 3.4,
            "status": status,
            "version": version,
        }

    rows += [alert(n, "critical", "open", 1, 30 + n) for n in range(4)]
    rows.append(alert(3, "critical", "resolved", 2, 33))  # alert 3 was resolved since
    rows += [alert(n, "warning", "open", 1, 12) for n in range(4, 6)]
    rows += [alert(n, "info", "open", 1, 5) for n in range(6, 7)]
    expected.open_critical, expected.open_warning = 3, 2
    return rows


def _payments(rng: random.Random, profile: CityProfile, now: datetime) -> list[dict[str, Any]]:
    hour = now.replace(minute=0, second=0, microsecond=0)
    cashless_share = {"utility_electricity": 0.995, "utility_water": 0.86, "utility_telecom": 0.82}
    rows = []
    categories = [*sorted({m.category for m in profile.merchants}), *cashless_share]
    for hours_ago in range(48):
        for ward in profile.wards:
            for category in categories:
                share = cashless_share.get(category, rng.uniform(0.4, 0.8))
                total = rng.randint(20, 400)
                counts = {"cash": round(total * (1 - share))}
                cashless = total - counts["cash"]
                counts |= {"vietqr": cashless // 2, "card": cashless // 6, "ewallet": cashless // 6}
                counts["bank_transfer"] = (
                    cashless - counts["vietqr"] - counts["card"] - counts["ewallet"]
                )
                rows.append(
                    {
                        "ward": ward.code,
                        "category": category,
                        "window_start": hour - timedelta(hours=hours_ago),
                        "reports": rng.randint(5, 40),
                        "terminals": rng.randint(2, 12),
                        **counts,
                        "cash_amount_vnd": counts["cash"] * 85_000,
                        "cashless_amount_vnd": cashless * 120_000,
                        "cashless_share": cashless / total,
                        "final": int(hours_ago > 0),
                        "version": 3,
                    }
                )
    return rows


def _portal(rng: random.Random, profile: CityProfile, today: date) -> list[dict[str, Any]]:
    ward_agencies = [a for a in profile.agencies if a.level == "ward"]
    pairs = [
        (a.agency, p.procedure_code)
        for p in profile.procedures
        if p.level == "ward"
        for a in ward_agencies[:4]
    ]
    pairs += [(p.agency, p.procedure_code) for p in profile.procedures if p.agency]
    rows = []
    for days_ago in range(30):
        for agency, procedure in pairs:
            submitted = rng.randint(0, 12)
            online = min(submitted, round(submitted * rng.uniform(0.9, 1.0)))
            resolved = rng.randint(0, 12)
            rows.append(
                {
                    "day": today - timedelta(days=days_ago),
                    "agency": agency,
                    "procedure_code": procedure,
                    "submitted": submitted,
                    "submitted_online": online,
                    "submitted_full_online": online,
                    "submitted_vneid_l2": online,
                    "paid_online": online // 2,
                    "resolved": resolved,
                    "resolved_signed": resolved,
                    "resolved_on_time": max(resolved - rng.choice([0, 0, 0, 0, 1]), 0),
                    "resolved_no_due": 0,
                    "rejected": rng.randint(0, 1),
                    "final": int(days_ago > 2),
                    "version": 1,
                }
            )
    return rows


def _dlq(now: datetime, expected: Expected) -> list[dict[str, Any]]:
    rows = []
    for i in range(150):  # a surge: a producer sends speeds in m/s strings
        rows.append(
            {
                "source_topic": "camera.events",
                "partition": i % 3,
                "offset": 1000 + i,
                "received_at": now - timedelta(seconds=10 + i),
                "error": "speed_kmh: Input should be a valid number",
                "payload": '{"plate": "72A-123.45"}',
            }
        )
    for i in range(20):
        rows.append(
            {
                "source_topic": "payments.terminal-counts",
                "partition": 0,
                "offset": i,
                "received_at": now - timedelta(minutes=30 + i),
                "error": "period_end: must be after period_start",
                "payload": "{}",
            }
        )
    expected.dlq_last_5_min = {"camera.events": 150}
    return rows


def _progress(now: datetime, expected: Expected) -> list[dict[str, Any]]:
    rows = []
    steps = 70 * 6  # a checkpoint every 10 s for 70 minutes
    for topic in TOPICS:
        for partition in range(3):
            events = late = duplicates = 0
            for step in range(steps):
                recorded = now - timedelta(seconds=10 * (steps - step))
                events += 900
                late += 1 if step % 30 == 0 else 0
                duplicates += 5
                if recorded >= now - timedelta(hours=1) and step % 30 == 0:
                    expected.late_events += 1
                rows.append(
                    {
                        "source_topic": topic,
                        "partition": partition,
                        "offset": events,
                        "recorded_at": recorded,
                        "stream_time": recorded - timedelta(seconds=2),
                        "events": events,
                        "accepted": events - duplicates - late,
                        "duplicates": duplicates,
                        "late": late,
                        "invalid": 0,
                        "open_windows": 200 + partition,
                        "lag": 50 * (partition + 1),
                        "sink_ms": 40.0 + step % 7,
                    }
                )
    return rows


def insert_city(client: Client, database: str, profile: CityProfile, now: datetime) -> Expected:
    """Insert the rows of three hours of a city day ending at `now` (UTC, whole minute)."""
    rng = random.Random(20240914)
    expected = Expected(now=now)
    violations = _violations(rng, profile, now)
    expected.violations = len(violations)
    for table, rows in (
        ("traffic_flow_1m", _flow(rng, profile, now, expected)),
        ("camera_status", _status(profile, now, expected)),
        ("traffic_violations", violations),
        ("traffic_alerts", _alerts(profile, now, expected)),
        ("payments_cashless_1h", _payments(rng, profile, now)),
        ("portal_kpis_1d", _portal(rng, profile, now.astimezone(profile.tz).date())),
        ("dlq_events", _dlq(now, expected)),
        ("pipeline_progress", _progress(now, expected)),
    ):
        _insert(client, database, table, rows)
    return expected


def utc_minute(moment: datetime | None = None) -> datetime:
    return (moment or datetime.now(UTC)).replace(second=0, microsecond=0)
