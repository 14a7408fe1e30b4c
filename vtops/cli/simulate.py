"""`vtops simulate`: realistic city events on the contract's input topics.

Camera traffic today (simulator.city lists the sources). The command is a thin shell: it
reads options and settings, builds the clock and sources, and shows the producer's progress.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from city.exceptions import VtopsError
from streams.traffic.anomaly.kinds import CAMERA_KINDS
from vtops.cli.output import Output, OutputOption, console, errors, exit_with_error

if TYPE_CHECKING:
    from city.profile import CityProfile
    from simulator.incidents import Incident
    from simulator.producer import Progress, RunSummary
    from simulator.sources import Load

logger = logging.getLogger(__name__)


def simulate(
    duration: float = typer.Option(60.0, min=0.1, help="wall-clock seconds to run"),
    speedup: float = typer.Option(
        60.0, min=0.001, help="city seconds per wall second (60: a minute covers an hour)"
    ),
    start: str | None = typer.Option(
        None, help="city time to start at, RFC 3339 with offset", show_default="now in the city"
    ),
    seed: int = typer.Option(72, help="random seed: same seed and options, same events"),
    rate: float | None = typer.Option(
        None,
        min=0,
        help="target mean events per city second over the run (wall rate: × speed-up)",
        show_default="the city's own load, about 300/s at a weekday peak",
    ),
    holiday: bool = typer.Option(
        False, "--holiday", help="a public holiday: three times the beach visitors"
    ),
    max_events: int | None = typer.Option(None, min=1, help="stop after this many events"),
    no_pace: bool = typer.Option(
        False,
        "--no-pace",
        help="send as fast as possible for --duration, not in step with wall time × speed-up",
    ),
    incident: Annotated[
        list[str] | None,
        typer.Option(
            "--incident",
            help="inject KIND:CAMERA:START:DURATION[:SIZE], e.g. "
            "congestion:VT-CAM-002:+30m:20m:0.5 "
            "(START: RFC 3339 or +offset from the run start; repeatable); kinds: "
            + ", ".join(CAMERA_KINDS),
        ),
    ] = None,
    truth: str | None = typer.Option(
        None, help="write the injected incidents here, one JSON line each (the ground truth)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Produce realistic camera traffic for the city to the input topics."""
    from rich.live import Live

    from city.profile import load_city_profile
    from simulator.city import city_sources
    from simulator.clock import SimClock, city_now, parse_start
    from simulator.producer import KafkaSink, run
    from simulator.sources import rate_scale_for, total_load
    from vtops.settings import get_settings

    pace = not no_pace
    settings = get_settings()
    try:
        profile = load_city_profile(settings.stream.city_profile)
        clock = SimClock(parse_start(start) if start else city_now(profile.tz), speedup)
        incidents = _incidents(incident or [], clock.start_ms, profile)
        if truth is not None:
            _write_truth(Path(truth), incidents, profile.tz)
        sources = city_sources(profile, seed, holiday=holiday, incidents=incidents)
        span_end = clock.start_ms + clock.span_ms(duration)
        scale = 1.0 if rate is None else rate_scale_for(sources, rate, clock.start_ms, span_end)
        if rate is not None:
            _warn_without_traffic(
                rate,
                total_load(sources, clock.start_ms, span_end),
                scale,
                span_end - clock.start_ms,
            )
        sink = KafkaSink(settings.kafka, [source.topic for source in sources])
    except VtopsError as exc:
        exit_with_error(str(exc))
    logger.info(
        "simulation start=%s speedup=%s pace=%s rate_scale=%.4f seed=%d",
        clock.start.isoformat(), speedup, pace, scale, seed,
    )  # fmt: skip
    # SIGTERM (as from a supervisor) stops the run like Ctrl-C: flushed, with a summary.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if output is Output.json:
            summary = run(
                sources, clock, sink,
                duration_s=duration, rate_scale=scale, pace=pace, max_events=max_events,
            )  # fmt: skip
        else:
            with Live(Text("starting…"), console=console, transient=True) as live:
                summary = run(
                    sources, clock, sink,
                    duration_s=duration, rate_scale=scale, pace=pace, max_events=max_events,
                    progress=lambda p: live.update(_progress_line(p, profile.tz)),
                )  # fmt: skip
    except VtopsError as exc:
        exit_with_error(str(exc))
    finally:
        sink.close()
    report = summary.as_dict(profile.tz)
    if output is Output.json:
        console.print_json(json.dumps(report))
    else:
        _print_summary(summary, report)


def _warn_without_traffic(rate: float, load: Load, scale: float, span_ms: int) -> None:
    """Say so when `--rate` leaves less than one vehicle passage or violation for the run:
    only the loads that do not scale (heartbeats, tallies, portal steps) would be sent."""
    if scale * load.scaled * span_ms / 1000 >= 1:
        return
    errors.print(
        f"[yellow]warning:[/] --rate {rate:g} sends no vehicle passages or violations in this "
        f"run: {load.fixed:.1f} events per city second are camera heartbeats, payment tallies "
        f"and portal steps, which do not scale with the rate; use a --rate well above "
        f"{load.fixed:.1f}.",
        markup=True,
    )


def _incidents(texts: Sequence[str], start_ms: int, profile: CityProfile) -> list[Incident]:
    from simulator.incidents import check_no_overlap, parse_incident

    camera_ids = {camera.camera_id for camera in profile.cameras}
    incidents = [parse_incident(text, start_ms, camera_ids) for text in texts]
    check_no_overlap(incidents)
    return incidents


def _write_truth(path: Path, incidents: Sequence[Incident], tz: tzinfo) -> None:
    from simulator.exceptions import SimulatorError

    lines = "".join(json.dumps(incident.truth(tz)) + "\n" for incident in incidents)
    try:
        path.write_text(lines, encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"--truth: cannot write {path}: {exc.strerror}") from None


def _progress_line(progress: Progress, tz: tzinfo) -> Text:
    city = datetime.fromtimestamp(progress.city_ms / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")
    rate = progress.sent / progress.wall_s if progress.wall_s else 0.0
    line = f"city {city} · {progress.sent:,} events · {rate:,.0f}/s"
    if progress.behind_s > 0.5:
        line += f" · {progress.behind_s:.1f} s behind the clock"
    return Text(line)


def _print_summary(summary: RunSummary, report: dict[str, object]) -> None:
    from rich.table import Table

    table = Table("kind", "events", title="Events sent")
    for kind, count in sorted(summary.by_kind.items()):
        table.add_row(kind, f"{count:,}")
    table.add_row("total", f"{summary.sent:,}", style="bold")
    console.print(table)
    per_s = report["events_per_wall_second"]
    console.print(
        f"city time {report['first_event']} → {report['last_event']}; "
        f"{summary.wall_s:.1f} s wall, {per_s or 0:,} events/s"
        + (" (interrupted)" if summary.interrupted else ""),
        soft_wrap=True,
    )
    if summary.max_behind_s > 1.0:
        console.print(
            f"[yellow]The producer fell up to {summary.max_behind_s:.1f} s behind the clock: "
            "the city makes more events per wall second than Kafka took; "
            "lower --speedup or --rate.[/]",
            soft_wrap=True,
        )
