"""`vtops report`: the article's indicators for a period, as one HTML page for the leaders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from city.exceptions import VtopsError
from vtops.cli.output import console, exit_with_error
from vtops.report.exceptions import ReportError
from vtops.report.language import LANGUAGES, Language

DEFAULT_OUT = Path("report.html")


def report(
    from_time: str | None = typer.Option(
        None,
        "--from",
        help="start, ISO 8601 date or time (city time without an offset)",
        show_default="7 days before --to",
    ),
    to_time: str | None = typer.Option(
        None, "--to", help="end (excluded), same forms", show_default="now"
    ),
    out: Annotated[Path, typer.Option(help="the HTML file to write")] = DEFAULT_OUT,
    language: str = typer.Option("vi", "--lang", help="vi (Vietnamese) or en (English)"),
) -> None:
    """Write the city leaders' report: one self-contained HTML page (works offline, on a phone,
    printed on A4) with the article's indicators, cashless payment, public services, traffic
    and data quality in [--from, --to)."""
    from city.profile import load_city_profile
    from vtops.cli.store import opened_store
    from vtops.report.period import Period
    from vtops.report.queries import read_report
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        if language not in LANGUAGES:
            raise ReportError(f"--lang: {language!r} is not one of {', '.join(LANGUAGES)}")
        profile = load_city_profile(settings.stream.city_profile)
        period = Period.of(from_time, to_time, profile.tz)
    except VtopsError as error:
        exit_with_error(str(error), code=2)
    chosen: Language = "vi" if language == "vi" else "en"
    with opened_store() as (client, database):
        data = read_report(client, database, profile, settings.kafka, period)
    # Here, not at the top: matplotlib takes most of a second to import, and every other
    # command of the CLI would pay it.
    from vtops.report.writer import write_report

    size = write_report(out, data, chosen, profile)
    console.print(f"report written: {out} ({size / 1024:,.0f} KiB)")
