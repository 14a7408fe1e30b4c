"""The leaders' report, looked at as a person would: `vtops report` on a real run's store
(`tests.city_run`), opened in headless Chromium; its numbers read back from the page equal what
the dashboards' panels give for the same period, and periods without data say so. Like the
dashboards' tests, the run keeps another database than `vtops` and Vũng Tàu on another clock,
so the report cannot lean on the defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from clickhouse_connect.driver.client import Client
from playwright.sync_api import Browser

from city.profile import CityProfile, PaymentCategory
from dashboards import cashless, portal, traffic_sql
from dashboards.dimensions import load_dimensions
from dashboards.macros import Context, TimeRange, Variable, expand
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.placeholders import fill
from tests.browser import PageVisit, chromium, visit
from tests.city_run import JAMMED_CAMERA, OFFLINE_CAMERA, city_pipeline, run_the_city
from tests.clickhouse_server import own_database, server_storage
from tests.dashboards.conftest import DATABASE, other_city
from tests.pipeline import PipelineRun
from vtops.report.language import parse_number, span
from vtops.report.page import render_page
from vtops.report.period import Period, utc_midnight
from vtops.report.queries import read_report
from vtops.report.texts import LABELS, VI
from vtops.report.writer import write_report

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class CityReport:
    run: PipelineRun
    client: Client
    profile: CityProfile
    hour: Period  # 09:00-10:00 of the run's day: all of its traffic
    page: Path  # that hour's report, as `vtops report` wrote it
    pages: Path  # where more pages go

    def render(self, period: Period, name: str) -> Path:
        path = self.pages / f"{name}.html"
        data = read_report(self.client, DATABASE, self.profile, self.run.kafka_settings, period)
        write_report(path, data, "vi", self.profile)
        return path


@pytest.fixture(scope="module")
def city_report(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CityReport]:
    profile = other_city()
    run = city_pipeline(tmp_path_factory.mktemp("city"), profile, DATABASE)
    now = run_the_city(run, profile)
    hour = Period(now.replace(minute=0), now.replace(minute=0) + timedelta(hours=1), profile.tz)
    pages = tmp_path_factory.mktemp("pages")
    written = run.vtops(
        "report", "--from", hour.start.isoformat(), "--to", hour.end.isoformat(),
        "--out", str(pages / "hour.html"),
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert "report written" in written.stdout
    with run.store() as client:
        load_dimensions(client, DATABASE, profile)  # the panels below join them
        yield CityReport(run, client, profile, hour, pages / "hour.html", pages)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


def _panel(
    report: CityReport, sql: str, period: Period, days: bool = False
) -> list[dict[str, Any]]:
    """A dashboard panel's rows for `period`, every variable at All, as Grafana would run it."""
    profile = report.profile
    variables = {
        "ward": Variable([w.code for w in profile.wards]),
        "camera": Variable([c.camera_id for c in profile.cameras]),
        "category": Variable(list(get_args(PaymentCategory))),
        "agency": Variable([a.agency for a in profile.agencies]),
        "procedure": Variable([p.procedure_code for p in profile.procedures]),
    }  # fmt: skip
    if days:
        time = TimeRange(utc_midnight(period.days[0]), utc_midnight(period.days[-1]))
    else:
        time = TimeRange(period.start, period.last_instant)
    filled = fill(sql, DATABASE, profile.timezone)
    result = report.client.query(expand(filled, Context(time, variables)))
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _shown(page: PageVisit, metric: str) -> float:
    return parse_number(page.metrics[metric], "vi")


def _same(page: PageVisit, metric: str, expected: float | None) -> None:
    """The page's number is the SQL's, to the decimals the page shows."""
    text = page.metrics[metric]
    if expected is None:
        assert text == "–", f"{metric}: nothing measured, yet the page shows {text!r}"
        return
    decimals = len(text.rstrip("%").partition(",")[2])
    assert _shown(page, metric) == pytest.approx(round(float(expected), decimals)), metric


def test_the_hour_in_chromium_shows_what_the_dashboards_show(
    city_report: CityReport, browser: Browser, tmp_path: Path
) -> None:
    screenshot = tmp_path / "report.png"
    page = visit(browser, city_report.page, screenshot)
    assert page.console_errors == []
    assert page.requests == [city_report.page.resolve().as_uri()], "the page fetched something"
    assert screenshot.stat().st_size > 50_000  # a full page of charts and tables, not blank
    # Wards' cashless shares, traffic by ward, by hour and by both; one payments hour is no
    # trend.
    assert page.charts == 4 and VI["one_point"] in page.text
    hour = city_report.hour

    share = _panel(city_report, cashless.SHARE_NOW, hour)[0]
    _same(page, "ind.cashless_share", share["cashless_share"])
    utilities = _panel(city_report, cashless.UTILITIES_NOW, hour)[0]
    for utility in ("electricity", "water", "telecom"):
        _same(page, f"ind.{utility}", utilities[utility])
    wards = _panel(city_report, cashless.BY_WARD, hour)
    assert len(wards) == len(city_report.profile.wards)
    for ward in wards:
        for column in ("cashless_share", "vietqr_share", "card_share", "ewallet_share"):
            _same(page, f"cashless.ward.{ward['ward']}.{column}", ward[column])

    kpis = _panel(city_report, portal.KPIS_NOW, hour, days=True)[0]
    _same(page, "ind.submitted_dossiers", kpis["submitted_dossiers"])
    for rate in portal.RATES:
        _same(page, f"ind.{rate}", kpis[rate])
    for agency in _panel(city_report, portal.BY_AGENCY, hour, days=True):
        _same(page, f"portal.agency.{agency['agency']}.submitted", agency["submitted"])
        _same(page, f"portal.agency.{agency['agency']}.on_time_rate", agency["on_time_rate"])

    violations = _panel(city_report, traffic_sql.VIOLATIONS_COUNT, hour)[0]["violations"]
    shown = [_shown(page, m) for m in page.metrics if m.startswith("traffic.violations.")]
    assert sum(shown) == violations > 0
    # Independent of the report's SQL: the flow table summed per ward, and the pipeline's own
    # counters (the whole run fell in this hour of stream time).
    per_ward = city_report.client.query(
        f"SELECT ward, sum(vehicles) FROM {DATABASE}.traffic_flow_1m FINAL GROUP BY ward"
    ).result_rows
    for ward, vehicles in per_ward:
        assert _shown(page, f"traffic.ward.{ward}.vehicles") == vehicles
    camera_topic = city_report.run.topic("camera.events")
    counted = city_report.client.query(
        "SELECT sum(e), sum(i) FROM (SELECT argMax(events, offset) AS e, argMax(invalid, offset)"
        f" AS i FROM {DATABASE}.pipeline_progress FINAL WHERE source_topic = {{t:String}}"
        " GROUP BY partition)",
        parameters={"t": camera_topic},
    ).result_rows[0]
    assert _shown(page, "quality.traffic.events") == counted[0] > 0
    assert _shown(page, "quality.traffic.dead_letters") == counted[1] == 2
    assert _shown(page, "quality.payments.dead_letters") == 1
    assert _shown(page, f"offline.{OFFLINE_CAMERA}.times") == 1
    jam = next(c for c in city_report.profile.cameras if c.camera_id == JAMMED_CAMERA)
    jam_ward = next(w.name for w in city_report.profile.wards if w.code == jam.ward)
    assert f"{LABELS['vi']['congestion']}\t1\t1" in page.text  # one jam, still open
    assert f"{jam.road} ({jam_ward})" in page.text


def test_the_phone_width_needs_no_sideways_scrolling_of_the_page(
    city_report: CityReport, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(city_report.page.resolve().as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()


def _day(report: CityReport) -> Period:
    day = report.hour.start.date()
    return Period(
        report.hour.midnight(day), report.hour.midnight(day + timedelta(days=1)), report.hour.tz
    )


def test_an_empty_period_says_so_instead_of_zeros(
    city_report: CityReport, browser: Browser
) -> None:
    hour = city_report.hour
    week_before = Period(hour.start - timedelta(days=14), hour.start - timedelta(days=7), hour.tz)
    page = visit(browser, city_report.render(week_before, "empty"))
    assert VI["empty_period"] in page.text
    for stream in ("payments", "portal", "traffic"):
        assert VI["no_data_stream"].format(stream=VI[f"stream.{stream}"]) in page.text
    assert not [m for m in page.metrics if m.startswith(("ind.", "cashless.", "traffic."))]
    assert page.text.count(f"\t{VI['no_data_short']}\t") == 13  # every indicator's value
    assert page.charts == 0 and page.console_errors == []


def test_a_single_day_has_hourly_trends_and_says_it_has_no_daily_one(
    city_report: CityReport, browser: Browser
) -> None:
    page = visit(browser, city_report.render(_day(city_report), "day"))
    assert VI["single_day"] in page.text
    assert VI["cashless_trend"].format(grain=VI["grain.hour"]) in page.text
    assert VI["empty_period"] not in page.text
    # The day's traffic is the run's forty-odd minutes from 09:00: the rest is a gap, said so.
    night = span(_day(city_report).start, city_report.hour.start, "vi")
    assert VI["gap"].format(span=night) in page.text
    assert [m for m in page.metrics if m.startswith("traffic.hour.")] == [
        "traffic.hour.9.vehicles",
        "traffic.hour.9.pcu",
    ]


def test_a_stream_missing_from_the_period_is_said_missing_the_others_shown(
    city_report: CityReport, browser: Browser
) -> None:
    """08:00-09:00: the payments' 08:00 window and the day's dossiers, but no camera yet."""
    hour = city_report.hour
    before = Period(hour.start - timedelta(hours=1), hour.start, hour.tz)
    page = visit(browser, city_report.render(before, "no-traffic"))
    assert VI["no_data_stream"].format(stream=VI["stream.traffic"]) in page.text
    assert not [m for m in page.metrics if m.startswith("traffic.")]
    assert VI["stream_missing"] in page.text
    assert _shown(page, "ind.payments") > 0 and _shown(page, "ind.submitted_dossiers") > 0


# The tables a report reads, copied to a server as the pipeline wrote them.
REPORTED_TABLES = (
    "traffic_flow_1m", "traffic_violations", "payments_cashless_1h", "portal_kpis_1d",
    "traffic_alerts", "pipeline_progress",
)  # fmt: skip


def test_a_server_gives_the_same_page_as_the_embedded_store(
    city_report: CityReport, clickhouse_server: str
) -> None:
    """The run's rows copied to a ClickHouse server: the same report, byte for byte (the
    drivers differ: the embedded engine gives naive UTC times, the server aware ones)."""
    profile, hour = city_report.profile, city_report.hour
    generated = hour.end
    embedded = read_report(
        city_report.client, DATABASE, profile, city_report.run.kafka_settings, hour
    )
    with own_database(clickhouse_server, "report") as database:
        server = connect(server_storage(clickhouse_server, database))
        try:
            migrate(server, database, timezone=profile.timezone)
            for table in REPORTED_TABLES:
                rows = city_report.client.query_arrow(f"SELECT * FROM {DATABASE}.{table}")
                server.insert_arrow(f"{database}.{table}", rows)
            served = read_report(server, database, profile, city_report.run.kafka_settings, hour)
        finally:
            server.close()
    assert render_page(served, "en", profile, generated) == render_page(
        embedded, "en", profile, generated
    )
