"""The traffic section: flows by ward, hour and road, violations, alerts, dark cameras."""

from __future__ import annotations

from vtops.report import charts
from vtops.report.language import duration, when
from vtops.report.queries import ReportData, Row, Traffic
from vtops.report.view import Cell, Section, Table
from vtops.report.words import Words, missing_stream


def traffic(data: ReportData, w: Words) -> Section:
    t = w.t
    section = Section(t["smart_city"])
    if data.traffic is None:
        return missing_stream(section, "traffic", w)
    flow: Traffic = data.traffic
    wards = sorted(flow.by_ward, key=lambda r: (-r["vehicles"], r["ward"]))
    section.charts.append(
        (
            f"{t['vehicles']} · {t['by_ward']}",
            charts.bars(
                "traffic-wards",
                [w.ward(r["ward"]) for r in wards],
                [r["vehicles"] for r in wards],
                w.numbers.number,
            ),
        )
    )
    section.charts.append(
        (
            t["hour_profile"],
            charts.hour_profile(
                "traffic-hours",
                [r["hour"] for r in flow.by_hour],
                [r["vehicles_per_day"] for r in flow.by_hour],
                [r["pcu_per_day"] for r in flow.by_hour],
                (t["vehicles_per_day"], t["pcu_per_day"]),
                w.numbers.number,
            ),
        )
    )
    section.charts.append(
        (
            t["ward_hours"],
            charts.ward_hours(
                "traffic-ward-hours",
                [w.ward(r["ward"]) for r in wards],
                {
                    (w.ward(r["ward"]), r["hour"]): r["vehicles_per_day"]
                    for r in flow.by_ward_and_hour
                },
                t["vehicles_per_day"],
                w.numbers.number,
            ),
        )
    )
    section.tables.append(
        Table(
            t["traffic_by_ward"],
            [t["ward"], t["vehicles"], t["pcu"], t["violations"]],
            [
                [
                    Cell(w.ward(r["ward"])),
                    w.count(r["vehicles"], f"traffic.ward.{r['ward']}.vehicles"),
                    w.count(r["pcu"], f"traffic.ward.{r['ward']}.pcu", 1),
                    w.count(r["violations"], f"traffic.ward.{r['ward']}.violations"),
                ]
                for r in wards
            ],
        )
    )
    section.tables.append(
        Table(
            t["hour_profile"],
            [t["hour"], t["vehicles_per_day"], t["pcu_per_day"]],
            [
                [
                    Cell(f"{r['hour']:02d}:00"),
                    w.count(r["vehicles_per_day"], f"traffic.hour.{r['hour']}.vehicles", 1),
                    w.count(r["pcu_per_day"], f"traffic.hour.{r['hour']}.pcu", 1),
                ]
                for r in flow.by_hour
            ],
        )
    )
    section.tables.append(
        Table(
            t["roads"],
            [t["road"], t["vehicles"], t["pcu"], t["speed"]],
            [
                [
                    Cell(r["road"]),
                    w.count(r["road_vehicles"], f"traffic.road.{r['road']}.vehicles"),
                    w.count(r["road_pcu"], f"traffic.road.{r['road']}.pcu", 1),
                    w.count(r["avg_speed_kmh"], f"traffic.road.{r['road']}.speed", 1),
                ]
                for r in flow.roads
            ],
        )
    )
    section.tables.append(
        Table(
            t["violations_by_type"],
            [t["violation_type"], t["count"]],
            [
                [Cell(w.label(kind)), w.count(n, f"traffic.violations.{kind}")]
                for kind, n in sorted(flow.violations.items(), key=lambda item: (-item[1], item[0]))
            ],
        )
    )
    section.tables.extend(_alerts(flow, w))
    return section


def _alerts(flow: Traffic, w: Words) -> list[Table]:
    t, lang = w.t, w.language
    by_kind = Table(
        t["alerts"],
        [
            t["alert_kind"],
            t["alerts_count"],
            t["still_open"],
            t["total_time"],
            t["longest"],
            t["where"],
        ],
        [
            [
                Cell(w.label(r["kind"])),
                w.count(r["alerts"], f"alerts.{r['kind']}.alerts"),
                w.count(r["still_open"], f"alerts.{r['kind']}.still_open"),
                Cell(duration(r["total_seconds"], lang)),
                Cell(duration(r["longest_seconds"], lang)),
                Cell("; ".join(w.place(c) for c in r["where_most"])),
            ]
            for r in flow.alerts_by_kind
        ],
        empty=t["no_alerts"],
    )
    longest = Table(
        t["longest_alerts"],
        [t["alert_kind"], t["place"], t["opened"], t["lasted"]],
        [
            [
                Cell(w.label(r["kind"])),
                Cell(w.place(r["camera_id"])),
                Cell(when(r["opened_at"], lang)),
                Cell(_lasted(r, w)),
            ]
            for r in flow.longest_alerts
        ],
        empty=t["no_alerts"],
    )
    offline = Table(
        t["offline_cameras"],
        [t["camera"], t["place"], t["times"], t["offline_time"]],
        [
            [
                Cell(r["camera_id"]),
                Cell(w.place(r["camera_id"])),
                w.count(r["times"], f"offline.{r['camera_id']}.times"),
                Cell(duration(r["offline_seconds"], lang)),
            ]
            for r in flow.offline_cameras
        ],
        empty=t["no_offline"],
    )
    return [by_kind, longest, offline]


def _lasted(alert: Row, w: Words) -> str:
    lasted = duration(alert["seconds"], w.language)
    return lasted if alert["resolved_at"] else f"{lasted} ({w.t['still_open']})"
