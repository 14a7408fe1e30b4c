"""One self-contained HTML page: styles and charts inline, no script, no request.

A Content-Security-Policy of `default-src 'none'` says so to the browser too: whatever a
future edit adds that would load something is refused rather than fetched.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from city.profile import CityProfile
from vtops.report import charts
from vtops.report.language import Language, span, when
from vtops.report.queries import ReportData
from vtops.report.sections import build_sections
from vtops.report.texts import TEXTS

_ENVIRONMENT: Final = Environment(
    loader=PackageLoader("vtops.report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(
    data: ReportData, language: Language, profile: CityProfile, generated: datetime | None = None
) -> str:
    t = TEXTS[language]
    notices = []
    if all(q.missing for q in data.quality.values()):
        notices.append(t["empty_period"])
    indicators, sections = build_sections(data, language, profile)
    svgs = charts.one_glyph_each([svg for section in sections for _, svg in section.charts])
    for section in sections:
        titles = [title for title, _ in section.charts]
        section.charts = list(zip(titles, svgs[: len(titles)], strict=True))
        svgs = svgs[len(titles) :]
    return _ENVIRONMENT.get_template("report.html.j2").render(
        language=language,
        t=t,
        period_text=span(data.period.start, data.period.end, language),
        generated_text=when(
            (generated or datetime.now(data.period.tz)).astimezone(data.period.tz), language
        ),
        notices=notices,
        indicators=indicators,
        sections=sections,
    )
