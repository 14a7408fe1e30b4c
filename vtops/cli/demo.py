"""`vtops demo`: the main job on a fresh machine, from an empty laptop to the city's numbers.

Local broker, topics, then the worker and the simulator side by side for a while; once the
worker has caught up it is stopped cleanly and the summary is read back from ClickHouse.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

import typer

from city.exceptions import VtopsError
from vtops.cli.output import console, exit_with_error

if TYPE_CHECKING:
    from city.profile import CityProfile
    from vtops.demo_summary import AlertLine, CitySummary, PipelineCounters
    from vtops.indicators import Indicator
    from vtops.settings import Settings

WORKER_STOP_TIMEOUT_S = 45
WATCH_INTERVAL_S = 0.2
# Two of the city's busiest speed-reporting cameras: a jam from +15 min, a dark camera from +30.
DEMO_INCIDENTS = ("congestion:VT-CAM-099:+15m:20m", "camera_offline:VT-CAM-122:+30m:10m")


def _morning_peak(tz: tzinfo, span_s: float) -> datetime:
    """Today's 08:00 in the city, or yesterday's while today's has not been lived yet: the
    worker refuses events from too far in the future (VTOPS_MAX_CLOCK_SKEW_S)."""
    now = datetime.now(tz)
    start = now.replace(hour=8, minute=0, second=0, microsecond=0)
    return start if start + timedelta(seconds=span_s) <= now else start - timedelta(days=1)


def demo(
    duration: float = typer.Option(60.0, min=5, help="wall seconds the simulator runs"),
    speedup: float = typer.Option(60.0, min=1, help="city seconds per wall second"),
    camera_rate: float | None = typer.Option(
        None,
        min=1,
        help="thin camera traffic to this many events per city second",
        show_default="the city's own traffic, unthinned",
    ),
    start: str | None = typer.Option(
        None,
        help="city time the simulation starts, RFC 3339",
        show_default="today 08:00 in the city",
    ),
    seed: int = typer.Option(72, help="simulator seed"),
    no_incidents: bool = typer.Option(
        False,
        "--no-incidents",
        help="inject no congestion and no offline camera (by default they are, so that the "
        "anomaly alerts have something to show; the rest of the hour is the control: it "
        "should raise next to nothing)",
    ),
) -> None:
    """Run the whole pipeline on this machine for a while and print the city's KPIs."""
    from city.profile import load_city_profile
    from simulator.clock import parse_start
    from sinks.clickhouse.client import connect
    from streams.app import consumed_topics
    from vtops.demo_processes import DemoProcess
    from vtops.demo_summary import city_summary, pipeline_counters, traffic_alerts
    from vtops.indicators import article_indicators
    from vtops.kafka import LocalBroker
    from vtops.kafka.offsets import remaining, wait_until_consumed
    from vtops.kafka.topics import ensure_topics
    from vtops.report.period import Period
    from vtops.report.queries import read_report
    from vtops.settings import get_settings

    incidents = not no_incidents
    began = time.monotonic()
    settings = get_settings()
    try:
        profile = load_city_profile(settings.stream.city_profile)
        city_start = parse_start(start) if start else _morning_peak(profile.tz, duration * speedup)
        city_end = city_start + timedelta(seconds=duration * speedup)
        console.rule("1. Kafka")
        console.print(
            f"broker: {LocalBroker(settings.kafka, settings.storage).start()}"
            f" at {settings.kafka.kafka_bootstrap}"
        )
        created = ensure_topics(
            settings.kafka, consumed_topics(settings.kafka, settings.stream, profile)
        )
        console.print(f"topics: {len(created)} created, the rest already there")
        before = _counters(settings, profile)
    except VtopsError as error:
        exit_with_error(str(error))

    console.rule("2. Worker and simulator")
    data_dir = settings.storage.data_dir
    worker = DemoProcess("worker", ["worker"], data_dir / "demo-worker.log", quiet=True)
    console.print(f"worker started (pid {worker.pid}, log {worker.log_path})")
    simulator: DemoProcess | None = None
    try:
        simulator = DemoProcess(
            "simulator",
            [
                "simulate",
                "--duration",
                str(duration),
                "--speedup",
                str(speedup),
                "--start",
                city_start.isoformat(),
                "--seed",
                str(seed),
                *(
                    arg
                    for incident in DEMO_INCIDENTS
                    if incidents
                    for arg in ("--incident", incident)
                ),
                *([] if camera_rate is None else ["--rate", str(camera_rate)]),
            ],
            data_dir / "demo-simulator.log",
            quiet=False,
        )
        while not simulator.finished():
            worker.ensure_running()
            time.sleep(WATCH_INTERVAL_S)
        consumed = consumed_topics(settings.kafka, settings.stream, profile)
        left = sum(remaining(settings.kafka, topic) for topic in consumed)
        console.print(f"waiting for the worker to process {left:,} messages…")
        with console.status(f"{left:,} messages left to process") as status:

            def watch(left: int) -> None:
                worker.ensure_running()
                status.update(f"{left:,} messages left to process")

            wait_until_consumed(settings.kafka, consumed, timeout_s=300, progress=watch)
        caught_up = time.monotonic()
    except BaseException as error:  # a Ctrl-C too: leave no process behind
        for process in (simulator, worker):
            if process is not None:
                process.stop(timeout_s=0)
        if isinstance(error, VtopsError):
            exit_with_error(str(error))
        raise
    stopped = worker.stop(timeout_s=WORKER_STOP_TIMEOUT_S)
    if stopped != 0:
        exit_with_error(str(worker.failure(f"exited with code {stopped} when stopped")))
    console.print(f"worker stopped cleanly after {caught_up - began:.0f} s")

    console.rule("3. Summary")
    client = connect(settings.storage)
    try:
        summary = city_summary(client, settings.storage.clickhouse_database, city_start, city_end)
        alerts = traffic_alerts(client, settings.storage.clickhouse_database, city_start, city_end)
        # A terminal's tally may start up to an hour before the simulated span.
        indicators = article_indicators(
            client,
            settings.storage.clickhouse_database,
            city_start - timedelta(hours=1),
            tz=profile.tz,
        )
        counted = pipeline_counters(client, settings.storage.clickhouse_database) - before
        hour = read_report(
            client,
            settings.storage.clickhouse_database,
            profile,
            settings.kafka,
            Period(city_start, city_end, profile.tz),
        )
    finally:
        client.close()
    _print_summary(summary, city_start, city_end, counted, time.monotonic() - began)
    _print_alerts(alerts, incidents)
    _print_indicators(indicators)
    from vtops.report.writer import write_report  # matplotlib: see vtops.cli.report

    report_path = settings.storage.data_dir / "report.html"
    write_report(report_path, hour, "vi", profile)
    console.print(f"The leaders' report of this hour: {report_path.resolve()}")


def _print_alerts(alerts: list[AlertLine], injected: bool) -> None:
    from rich.table import Table

    table = Table(
        "kind", "camera", "opened", "resolved", "observed / expected",
        title="Traffic alerts opened this hour",
    )  # fmt: skip
    for alert in alerts:
        table.add_row(
            alert.kind, alert.camera, alert.opened, alert.resolved or "open",
            f"{alert.observed:,.1f} / {alert.expected:,.1f}",
        )  # fmt: skip
    console.print(table)
    if injected:
        console.print("Injected: " + "; ".join(DEMO_INCIDENTS), soft_wrap=True)


def _counters(settings: Settings, profile: CityProfile) -> PipelineCounters:
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import migrate
    from vtops.demo_summary import pipeline_counters

    client = connect(settings.storage)
    try:
        migrate(client, settings.storage.clickhouse_database, timezone=profile.timezone)
        return pipeline_counters(client, settings.storage.clickhouse_database)
    finally:
        client.close()


def _print_summary(
    summary: CitySummary, start: datetime, end: datetime, counted: PipelineCounters, wall_s: float
) -> None:
    from rich.table import Table

    windows, cameras, vehicles, pcu, violations = summary.flow_totals
    console.print(
        f"City time {start:%Y-%m-%d %H:%M} → {end:%H:%M}: {vehicles:,} vehicles at {cameras} "
        f"cameras, {pcu:,} PCU, {violations:,} violations in {windows:,} camera-minutes."
    )
    console.print(
        f"Pipeline, this run: {counted.events:,} events processed, {counted.duplicates:,} "
        f"duplicates, {counted.late:,} late, {counted.invalid:,} dead letters. "
        f"Wall time {wall_s:.0f} s."
    )
    for title, columns, rows in (
        (
            "Busiest cameras",
            ("camera", "ward", "vehicles", "PCU", "avg km/h"),
            summary.busiest_cameras,
        ),
        (
            "Busiest wards",
            ("ward", "vehicles", "PCU", "motorbike %", "violations"),
            summary.busiest_wards,
        ),
        ("Violations by type", ("type", "count"), summary.violations_by_type),
    ):
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
        console.print(table)


def _print_indicators(indicators: list[Indicator]) -> None:
    from rich.table import Table

    table = Table(
        "indicator", "live", "the article reports", title="The article's indicators, live"
    )
    for indicator in indicators:
        if indicator.value is None:
            shown = "no data yet"
        elif indicator.unit == "%":
            shown = f"{indicator.value:.2f}%"
        else:
            shown = f"{indicator.value:,.0f}"
        table.add_row(indicator.name, shown, indicator.reported)
    console.print(table)
