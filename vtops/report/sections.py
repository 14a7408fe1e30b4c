"""The report's sections, from what `queries` read, in one language.

Numbers are written once here, with the language's format, and each carries a metric name
(`data-metric` on the page) so that a test can read it back. Percentages have one decimal,
counts none: a leader compares them with the article's figures, which have two at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from city.profile import CityProfile
from dashboards.portal import ON_TIME_REF, VNEID_REF
from vtops.report import charts
from vtops.report.language import Language, span
from vtops.report.period import Period
from vtops.report.queries import STREAMS, Cashless, Portal, ReportData
from vtops.report.traffic_section import traffic
from vtops.report.view import Cell, Section, Table
from vtops.report.words import Words, missing_stream

METHODS = ("vietqr", "card", "ewallet", "bank_transfer")
MAX_GAPS_SHOWN = 3


def indicators(data: ReportData, w: Words) -> Table:
    t, cash, gov = w.t, data.cashless, data.portal
    missing = Cell(t["no_data_short"])
    rows: list[list[Cell]] = []

    def add(key: str, value: Cell | None, article: str = "", target: str = "") -> None:
        rows.append(
            [
                Cell(t[f"ind.{key}"]),
                value or missing,
                Cell(article or t["no_figure"]),
                Cell(target or "–"),
            ]
        )

    def cash_value(row: str, column: str, percent: bool = True) -> Cell | None:
        if cash is None:
            return None
        value = getattr(cash, row)[column]
        return w.pct(value, f"ind.{column}") if percent else w.count(value, f"ind.{column}")

    add("payments", cash_value("city", "payments", percent=False))
    add("cashless_share", cash_value("city", "cashless_share"))
    for utility in ("electricity", "water", "telecom"):
        add(utility, cash_value("utilities", utility), t[f"art.{utility}"])
    add("qr_terminals", cash_value("qr_terminals", "qr_active_terminals", False), t["art.qr"])

    def gov_value(column: str, percent: bool = True) -> Cell | None:
        if gov is None:
            return None
        value = gov.totals[column]
        return w.pct(value, f"ind.{column}") if percent else w.count(value, f"ind.{column}")

    add("submitted", gov_value("submitted_dossiers", percent=False))
    add("online_share", gov_value("online_share"), t["art.online"])
    add("full_online_share", gov_value("full_online_share"), t["art.full_online"])
    add("on_time_rate", gov_value("on_time_rate"), t["art.on_time"])
    add("vneid_l2_share", gov_value("vneid_l2_share"), t["art.vneid"], t["tgt.vneid"])
    add("signed_share", gov_value("signed_share"), t["art.signed"])
    add("paid_online_share", gov_value("paid_online_share"))
    return Table(t["indicators"], [t["indicator"], t["measured"], t["article"], t["target"]], rows)


def cashless(data: ReportData, w: Words) -> Section:
    t = w.t
    section = Section(t["digital_society"])
    if data.cashless is None:
        return missing_stream(section, "payments", w)
    cash: Cashless = data.cashless
    period = data.period
    shares = {row["time"]: row["cashless_share"] for row in cash.trend}
    _trend(
        section,
        period,
        period.buckets(),
        {t["ind.cashless_share"]: shares},
        t["cashless_trend"].format(grain=t[f"grain.{period.grain}"]),
        "cashless-trend",
        w,
    )
    wards = sorted(cash.by_ward, key=lambda r: (-(r["cashless_share"] or 0), r["ward"]))
    section.charts.append(
        (
            f"{t['ind.cashless_share']} · {t['by_ward']}",
            charts.bars(
                "cashless-wards",
                [w.ward(r["ward"]) for r in wards],
                [r["cashless_share"] for r in wards],
                w.numbers.percent,
            ),
        )
    )
    columns = ("cashless_share", *(f"{m}_share" for m in METHODS), "amount_share")
    section.tables.append(
        Table(
            t["by_ward"],
            [
                t["ward"],
                t["payments"],
                t["share"],
                *(w.label(m) for m in METHODS),
                t["amount_share"],
            ],
            [
                [
                    Cell(w.ward(r["ward"])),
                    w.count(r["payments"], f"cashless.ward.{r['ward']}.payments"),
                    *(w.pct(r[c], f"cashless.ward.{r['ward']}.{c}") for c in columns),
                ]
                for r in wards
            ],
        )
    )
    categories = sorted(cash.by_category, key=lambda r: (-(r["payments"] or 0), r["category"]))
    section.tables.append(
        Table(
            t["by_category"],
            [t["category"], t["payments"], t["share"]],
            [
                [
                    Cell(w.label(r["category"])),
                    w.count(r["payments"], f"cashless.category.{r['category']}.payments"),
                    w.pct(r["cashless_share"], f"cashless.category.{r['category']}.cashless_share"),
                ]
                for r in categories
            ],
        )
    )
    section.tables.append(
        Table(
            t["by_method"],
            [t["method"], t["share"]],
            [
                [Cell(w.label(m)), w.pct(cash.city[f"{m}_share"], f"cashless.method.{m}")]
                for m in METHODS
            ],
        )
    )
    return section


def government(data: ReportData, w: Words) -> Section:
    t = w.t
    section = Section(t["digital_government"])
    if data.portal is None:
        return missing_stream(section, "portal", w)
    gov: Portal = data.portal
    days = [data.period.midnight(day) for day in data.period.days]
    if data.period.single_day:
        section.notices.append(t["single_day"])
    else:
        series = {
            t[label]: {row["time"]: row[column] for row in gov.per_day}
            for label, column in (
                ("online", "online_share"),
                ("on_time", "on_time_rate"),
                ("vneid", "vneid_l2_share"),
            )
        }
        # The article's figures: 99.85% on time (2024), 99.17% with VNeID (9/2024).
        references = {t["on_time"]: ON_TIME_REF, t["vneid"]: VNEID_REF}
        title = f"{t['portal_trend']} ({t['dashed_article']})"
        _trend(section, data.period, days, series, title, "portal-trend", w, references)
    columns = (
        "online_share",
        "full_online_share",
        "on_time_rate",
        "vneid_l2_share",
        "signed_share",
        "paid_online_share",
    )
    agencies = sorted(gov.by_agency, key=lambda r: (-r["submitted_dossiers"], r["agency"]))
    section.tables.append(
        Table(
            t["by_agency"],
            [
                t["agency"],
                t["submitted"],
                t["online"],
                t["full_online"],
                t["on_time"],
                t["vneid"],
                t["signed"],
                t["paid_online"],
            ],
            [
                [
                    Cell(w.agencies.get(r["agency"]) or r["agency"]),
                    w.count(r["submitted_dossiers"], f"portal.agency.{r['agency']}.submitted"),
                    *(w.pct(r[c], f"portal.agency.{r['agency']}.{c}") for c in columns),
                ]
                for r in agencies
            ],
        )
    )
    return section


def _trend(
    section: Section,
    period: Period,
    buckets: Sequence[datetime],
    series: dict[str, dict[datetime, float | None]],
    title: str,
    name: str,
    w: Words,
    references: dict[str, float] | None = None,
) -> None:
    points = max(sum(v is not None for v in values.values()) for values in series.values())
    if points < 2:
        section.notices.append(f"{title}: {w.t['one_point']}")
        return
    svg = charts.trend(
        name, buckets, series, w.numbers.percent, references, hourly=period.grain == "hour"
    )
    section.charts.append((title, svg))


def quality(data: ReportData, w: Words) -> Section:
    t, lang = w.t, w.language
    section = Section(t["data_quality"], notices=[t["gap_note"]])
    rows = []
    for stream in STREAMS:
        q = data.quality[stream]
        if q.missing:
            coverage = t["stream_missing"]
        elif not q.gaps:
            coverage = t["complete"]
        else:
            shown = [t["gap"].format(span=span(a, b, lang)) for a, b in q.gaps[:MAX_GAPS_SHOWN]]
            if len(q.gaps) > MAX_GAPS_SHOWN:
                shown.append(t["gaps_more"].format(n=len(q.gaps) - MAX_GAPS_SHOWN))
            coverage = "; ".join(shown)
        rows.append(
            [
                Cell(t[f"stream.{stream}"]),
                w.count(q.events, f"quality.{stream}.events"),
                w.count(q.dead_letters, f"quality.{stream}.dead_letters"),
                w.count(q.late, f"quality.{stream}.late"),
                Cell(coverage),
            ]
        )
    section.tables.append(
        Table(
            t["data_quality"],
            [t["stream"], t["events"], t["dead_letters"], t["late"], t["coverage"]],
            rows,
        )
    )
    return section


def build_sections(
    data: ReportData, language: Language, profile: CityProfile
) -> tuple[Table, list[Section]]:
    w = Words(language, profile)
    return indicators(data, w), [
        cashless(data, w),
        government(data, w),
        traffic(data, w),
        quality(data, w),
    ]
