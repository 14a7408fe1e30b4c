"""The leaders' report's page size for a week of the whole city.

A week of the city's output rows, generated inside the embedded ClickHouse (not through the
pipeline: the page's size depends on the shape of the data, 17 wards, 196 cameras, 29
agencies, 7 days, and not on how the rows got there): every camera every minute, every
ward and category every hour, every procedure every day, 300 alerts, 40,000 violations and a
checkpoint per partition every 10 s. Then the week's report in both languages, and for
comparison a day's and an hour's of the same store.

    .venv/bin/python -m benchmarks.report_page      # about a minute
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from clickhouse_connect.driver.client import Client

from city.profile import CityProfile, load_city_profile
from city.settings import KafkaSettings
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.placeholders import fill
from sinks.settings import StorageSettings
from vtops.report.period import Period
from vtops.report.queries import read_report, stream_topics
from vtops.report.writer import write_report

DATABASE: Final = "vtops"


def _week_of_rows(client: Client, profile: CityProfile, start: datetime, days: int) -> None:
    """INSERT … SELECT from numbers(): the rows are made where they are stored."""
    minutes, hours = days * 1440, days * 24
    parameters = {
        "start": start,
        "cameras": [c.camera_id for c in profile.cameras],
        "camera_wards": [c.ward for c in profile.cameras],
        "wards": [w.code for w in profile.wards],
        "categories": ["grocery", "market", "restaurant", "retail", "fuel", "other",
                       "utility_electricity", "utility_water", "utility_telecom"],
        "procedures": [p.procedure_code for p in profile.procedures],
        "agencies": [p.agency or "ubnd-thanh-pho" for p in profile.procedures],
        "topics": [t for names in stream_topics(KafkaSettings()).values() for t in names],
    }  # fmt: skip
    at = "toDateTime({start:DateTime}, '" + profile.timezone + "')"
    for sql in (
        f"""INSERT INTO {{db}}.traffic_flow_1m
        SELECT c.1, c.2, {at} + INTERVAL n.number MINUTE, v, toUInt32(v * 0.75),
               toUInt32(v * 0.17), 0, toUInt32(v * 0.04), toUInt32(v * 0.03), 0, v * 0.55,
               25 + v % 20, v % 3, 1, 1
        FROM numbers({minutes}) AS n
        ARRAY JOIN arrayZip({{cameras:Array(String)}}, {{camera_wards:Array(String)}}) AS c
        ARRAY JOIN [toUInt32(5 + cityHash64(n.number, c.1) % 40)] AS v""",
        f"""INSERT INTO {{db}}.payments_cashless_1h
        SELECT w, c, {at} + INTERVAL n.number HOUR, 40, 10, cash, q, 5, 4, 3, cash * 90000,
               (q + 12) * 120000, (q + 12) / (cash + q + 12), 1, 1
        FROM numbers({hours}) AS n
        ARRAY JOIN {{wards:Array(String)}} AS w
        ARRAY JOIN {{categories:Array(String)}} AS c
        ARRAY JOIN [20 + cityHash64(n.number, w, c) % 30] AS cash
        ARRAY JOIN [10 + cityHash64(c, w, n.number) % 40] AS q""",
        f"""INSERT INTO {{db}}.portal_kpis_1d
        SELECT toDate({at} + INTERVAL n.number DAY), p.2, p.1, 6, 5, 3, 5, 2, 5, 5, 5, 0, 0, 1, 1
        FROM numbers({days}) AS n
        ARRAY JOIN arrayZip({{procedures:Array(String)}}, {{agencies:Array(String)}}) AS p""",
        f"""INSERT INTO {{db}}.traffic_violations (event_id, camera_id, ward, ts, violation_type,
            vehicle_class)
        SELECT toString(number), {{cameras:Array(String)}}[number % 196 + 1],
               {{camera_wards:Array(String)}}[number % 196 + 1],
               {at} + INTERVAL (number * 15) SECOND,
               ['red_light', 'wrong_lane', 'no_helmet', 'speeding'][number % 4 + 1], 'motorbike'
        FROM numbers({days * 5760})""",
        f"""INSERT INTO {{db}}.traffic_alerts (alert_id, camera_id, ward, kind, severity,
            opened_at, resolved_at, observed, expected, score, status, version)
        SELECT toString(number), {{cameras:Array(String)}}[number % 196 + 1],
               {{camera_wards:Array(String)}}[number % 196 + 1],
               ['camera_offline', 'congestion', 'camera_silent', 'flow_drop'][number % 4 + 1],
               'warning', {at} + INTERVAL (number * 2000) SECOND,
               {at} + INTERVAL (number * 2000 + 300 + number * 7) SECOND, 1, 2, 3,
               'resolved', 1
        FROM numbers(300)""",
        f"""INSERT INTO {{db}}.pipeline_progress (source_topic, partition, offset, recorded_at,
            stream_time, events, accepted, duplicates, late, invalid, open_windows, lag, sink_ms)
        SELECT t, p, n.number, now64(3), {at} + INTERVAL (n.number * 10) SECOND,
               n.number * 300, n.number * 300, 0, intDiv(n.number, 50), intDiv(n.number, 400),
               0, 0, 1
        FROM numbers({days * 8640}) AS n
        ARRAY JOIN {{topics:Array(String)}} AS t
        ARRAY JOIN range(6) AS p""",
    ):
        client.command(fill(sql, DATABASE, profile.timezone), parameters=parameters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("var/report-week"))
    args = parser.parse_args()
    profile = load_city_profile()
    start = datetime.now(profile.tz).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=args.days
    )
    with tempfile.TemporaryDirectory() as data_dir:
        client = connect(StorageSettings(data_dir=Path(data_dir)))
        try:
            migrate(client, DATABASE, timezone=profile.timezone)
            began = time.monotonic()
            _week_of_rows(client, profile, start, args.days)
            print(f"rows made in {time.monotonic() - began:.1f} s")
            spans = {
                "week": Period(start, start + timedelta(days=args.days), profile.tz),
                "day": Period(start, start + timedelta(days=1), profile.tz),
                "hour": Period(start + timedelta(hours=8), start + timedelta(hours=9), profile.tz),
            }
            for name, period in spans.items():
                for language in ("vi", "en"):
                    began = time.monotonic()
                    data = read_report(client, DATABASE, profile, KafkaSettings(), period)
                    path = args.out / f"report-{name}-{language}.html"
                    size = write_report(path, data, language, profile)
                    print(
                        f"{name:>4} {language}: {size:>9,} bytes ({size / 1024:,.0f} KiB), "
                        f"{time.monotonic() - began:.1f} s, {path}"
                    )
        finally:
            client.close()


if __name__ == "__main__":
    main()
