"""Every number of the report, read from ClickHouse.

Where a dashboard panel shows the same thing the panel's SQL runs here unchanged, filled for
the store and the city (`sinks.clickhouse.placeholders`) and expanded by `dashboards.macros` as
Grafana would, with the report's period as its time range and every variable at All, so the
page and the screens never disagree; `sql` holds the report's own views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, get_args

from clickhouse_connect.driver.client import Client

from city import topics
from city.profile import CityProfile, PaymentCategory
from city.settings import KafkaSettings
from dashboards import cashless, portal, traffic_sql
from dashboards.macros import Context, TimeRange, Variable, expand
from sinks.clickhouse.placeholders import fill
from streams.app import by_group_topic
from vtops.report import sql
from vtops.report.period import Period, utc_midnight

Row = dict[str, Any]
STREAMS: Final = ("traffic", "payments", "portal")

CASHLESS_CITY: Final = f"""
    SELECT {cashless.SHARES}
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND {cashless.SELECTION}
"""


@dataclass(frozen=True)
class Cashless:
    city: Row
    utilities: Row
    qr_terminals: Row
    by_ward: list[Row]
    by_category: list[Row]
    trend: list[Row]


@dataclass(frozen=True)
class Portal:
    totals: Row
    by_agency: list[Row]
    per_day: list[Row]  # rates, shares and dossiers of each city day


@dataclass(frozen=True)
class Traffic:
    by_ward: list[Row]
    by_hour: list[Row]
    by_ward_and_hour: list[Row]
    roads: list[Row]
    violations: dict[str, int]
    alerts_by_kind: list[Row]
    longest_alerts: list[Row]
    offline_cameras: list[Row]


@dataclass(frozen=True)
class StreamQuality:
    stream: str
    events: int
    dead_letters: int
    late: int
    present: int  # minutes (traffic), hours (payments) or city days (portal) with a row
    gaps: list[tuple[datetime, datetime]]  # [start, end) without a single row

    @property
    def missing(self) -> bool:
        """Not one row in the whole period."""
        return self.present == 0


@dataclass(frozen=True)
class ReportData:
    period: Period
    cashless: Cashless | None  # None: the stream has no data in the period
    portal: Portal | None
    traffic: Traffic | None
    quality: dict[str, StreamQuality]


class _Reader:
    def __init__(self, client: Client, database: str, profile: CityProfile, period: Period):
        self.client, self.database, self.profile = client, database, profile
        variables = {
            "ward": Variable([w.code for w in profile.wards]),
            "camera": Variable([c.camera_id for c in profile.cameras]),
            "category": Variable(list(get_args(PaymentCategory))),
            "agency": Variable([a.agency for a in profile.agencies]),
            "procedure": Variable([p.procedure_code for p in profile.procedures]),
        }
        span = period.end - period.start
        self.hours = Context(TimeRange(period.start, period.last_instant, span), variables)
        # The portal's rows are city days; Grafana's date macros read the UTC date.
        days = period.days
        self.days = Context(TimeRange(utc_midnight(days[0]), utc_midnight(days[-1])), variables)

    def rows(
        self, query: str, context: Context, parameters: Mapping[str, Any] | None = None
    ) -> list[Row]:
        expanded = expand(fill(query, self.database, self.profile.timezone), context)
        result = self.client.query(expanded, parameters=dict(parameters or {}))
        names = result.column_names
        return [
            {name: self._city_time(value) for name, value in zip(names, row, strict=True)}
            for row in result.result_rows
        ]

    def row(self, query: str, context: Context) -> Row:
        return self.rows(query, context)[0]

    def _city_time(self, value: Any) -> Any:
        """Times in city time. The driver gives naive UTC (the embedded engine) or aware ones."""
        if not isinstance(value, datetime):
            return value
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(self.profile.tz)


def read_report(
    client: Client, database: str, profile: CityProfile, kafka: KafkaSettings, period: Period
) -> ReportData:
    reader = _Reader(client, database, profile, period)
    quality = _quality(reader, period, kafka)
    return ReportData(
        period,
        None if quality["payments"].missing else _cashless(reader, period),
        None if quality["portal"].missing else _portal(reader),
        None if quality["traffic"].missing else _traffic(reader, profile),
        quality,
    )


def _cashless(reader: _Reader, period: Period) -> Cashless:
    at = reader.hours
    bucket = "toStartOfHour" if period.grain == "hour" else "toStartOfDay"
    return Cashless(
        city=reader.row(CASHLESS_CITY, at),
        utilities=reader.row(cashless.UTILITIES_NOW, at),
        qr_terminals=reader.row(cashless.QR_TERMINALS_NOW, at),
        by_ward=reader.rows(cashless.shares_by("ward"), at),
        by_category=reader.rows(cashless.shares_by("category"), at),
        trend=reader.rows(sql.cashless_trend(bucket), at),
    )


def _portal(reader: _Reader) -> Portal:
    at = reader.days
    per_day: dict[datetime, Row] = {}
    for query in (portal.RATES_PER_DAY, portal.SHARES_PER_DAY, portal.DOSSIERS_PER_DAY):
        for found in reader.rows(query, at):
            per_day.setdefault(found["time"], {}).update(found)
    return Portal(
        totals=reader.row(portal.KPIS_NOW, at),
        by_agency=reader.rows(portal.kpis_by("agency"), at),
        per_day=[per_day[day] for day in sorted(per_day)],
    )


def _traffic(reader: _Reader, profile: CityProfile) -> Traffic:
    at = reader.hours
    roads = {
        "cameras": [c.camera_id for c in profile.cameras],
        "roads": [c.road for c in profile.cameras],
    }
    # The panel's buckets (at most two over the period's span), added up per type.
    violations = dict.fromkeys(traffic_sql.VIOLATION_TYPES, 0)
    for found in reader.rows(traffic_sql.VIOLATIONS_BY_TYPE, at):
        violations[found["violation_type"]] = (
            violations.get(found["violation_type"], 0) + found["violations"]
        )
    return Traffic(
        by_ward=reader.rows(sql.FLOW_BY_WARD, at),
        by_hour=reader.rows(sql.FLOW_BY_HOUR, at),
        by_ward_and_hour=reader.rows(sql.FLOW_BY_WARD_AND_HOUR, at),
        roads=reader.rows(sql.BUSIEST_ROADS, at, roads),
        violations=violations,
        alerts_by_kind=reader.rows(sql.ALERTS_BY_KIND, at),
        longest_alerts=reader.rows(sql.LONGEST_ALERTS, at),
        offline_cameras=reader.rows(sql.CAMERAS_OFFLINE_LONGEST, at),
    )


def stream_topics(kafka: KafkaSettings) -> dict[str, list[str]]:
    """The source topics each stream counts its events on (a re-keyed stream: both stages)."""
    return {
        "traffic": [kafka.topic(topics.CAMERA_EVENTS)],
        "payments": [kafka.topic(topics.PAYMENT_COUNTS), by_group_topic(kafka, "payments")],
        "portal": [kafka.topic(topics.PORTAL_TRANSACTIONS), by_group_topic(kafka, "portal")],
    }


def _quality(reader: _Reader, period: Period, kafka: KafkaSettings) -> dict[str, StreamQuality]:
    by_stream = stream_topics(kafka)
    counted = {
        found["source_topic"]: found
        for found in reader.rows(
            sql.STREAM_COUNTS,
            reader.hours,
            {"topics": [t for names in by_stream.values() for t in names]},
        )
    }
    quality = {}
    for stream in STREAMS:
        context = reader.days if stream == "portal" else reader.hours
        present = {next(iter(r.values())) for r in reader.rows(sql.PRESENT[stream], context)}
        step, buckets = _buckets(stream, period)
        rows = [counted[t] for t in by_stream[stream] if t in counted]
        quality[stream] = StreamQuality(
            stream,
            events=sum(int(r["events"]) for r in rows),
            dead_letters=sum(int(r["dead_letters"]) for r in rows),
            late=sum(int(r["late"]) for r in rows),
            present=sum(1 for b in buckets if b in present),
            gaps=_gaps(buckets, present, step),
        )
    return quality


def _buckets(stream: str, period: Period) -> tuple[timedelta, list[datetime]]:
    """The minutes (traffic), hours (payments) or city days (portal) of the period."""
    if stream == "portal":
        step = timedelta(days=1)
        return step, period.steps(period.midnight(period.days[0]), step)
    step = timedelta(minutes=1) if stream == "traffic" else timedelta(hours=1)
    # Windows are aligned on the epoch (UTC), as the streams cut them.
    start = period.start.astimezone(UTC).replace(second=0, microsecond=0)
    if stream == "payments":
        start = start.replace(minute=0)
    return step, period.steps(start.astimezone(period.tz), step)


def _gaps(
    buckets: Sequence[datetime], present: set[datetime], step: timedelta
) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive buckets without a row, as [start, end)."""
    gaps: list[tuple[datetime, datetime]] = []
    for bucket in buckets:
        if bucket in present:
            continue
        if gaps and gaps[-1][1] == bucket:
            gaps[-1] = (gaps[-1][0], bucket + step)
        else:
            gaps.append((bucket, bucket + step))
    return gaps
