"""Digital government: the public-service portal's daily KPIs against the article's figures.

Reads `portal_kpis_1d` (one row per local day, agency and procedure). References from the
2024 report: dossiers resolved on time 99.85% (2022's 99.35% marks the low of recent years),
online public services used with VNeID authentication 99.17% by 9/2024 (88% before), every
result digitally signed (100%).
"""

from __future__ import annotations

from typing import Final

from dashboards.layout import Layout, dashboard
from dashboards.panels import (
    JSON,
    Step,
    field_config,
    override,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)

UID = "vtops-portal"
ON_TIME_REF: Final = 99.85
ON_TIME_LOW: Final = 99.35
VNEID_REF: Final = 99.17
VNEID_BEFORE: Final = 88.0
SIGNED_REF: Final = 100.0

AGENCY_VARIABLE: Final = "SELECT agency, name FROM {db}.agencies ORDER BY level, agency"
PROCEDURE_VARIABLE: Final = """
    SELECT procedure_code, concat(procedure_code, ' · ', name) FROM {db}.procedures
    ORDER BY procedure_code
"""
SELECTION: Final = (
    "agency IN (${agency:singlequote}) AND procedure_code IN (${procedure:singlequote})"
)


def _pct(numerator: str, denominator: str) -> str:
    return f"round(100 * sum({numerator}) / nullIf(sum({denominator}), 0), 2)"


RATES: Final = {
    "online_share": _pct("submitted_online", "submitted"),
    "full_online_share": _pct("submitted_full_online", "submitted"),
    # On time among resolved dossiers whose deadline is known.
    "on_time_rate": _pct("resolved_on_time", "resolved - resolved_no_due"),
    "vneid_l2_share": _pct("submitted_vneid_l2", "submitted_online"),
    "signed_share": _pct("resolved_signed", "resolved"),
    "paid_online_share": _pct("paid_online", "submitted_online"),
}
_RATE_COLUMNS: Final = ",\n           ".join(f"{expr} AS {name}" for name, expr in RATES.items())

# Sums are named *_dossiers: an alias equal to a column would replace that column inside the
# rates' own sum() (ClickHouse resolves aliases first) and nest aggregates.
_COUNTS: Final = (
    "sum(submitted) AS submitted_dossiers, sum(resolved) AS resolved_dossiers, "
    "sum(rejected) AS rejected_dossiers, sum(paid_online) AS paid_online_dossiers"
)

KPIS_NOW: Final = f"""
    SELECT {_COUNTS},
           {_RATE_COLUMNS}
    FROM {{db}}.portal_kpis_1d FINAL
    WHERE $__dateFilter(day) AND {SELECTION}
"""

RATES_PER_DAY: Final = f"""
    SELECT toDateTime(day, '{{tz}}') AS time,
           {RATES["on_time_rate"]} AS on_time_rate,
           {RATES["vneid_l2_share"]} AS vneid_l2_share,
           {RATES["signed_share"]} AS signed_share,
           {ON_TIME_REF} AS ref_on_time_rate,
           {VNEID_REF} AS ref_vneid_l2_share
    FROM {{db}}.portal_kpis_1d FINAL
    WHERE $__dateFilter(day) AND {SELECTION}
    GROUP BY day
    ORDER BY time
"""

SHARES_PER_DAY: Final = f"""
    SELECT toDateTime(day, '{{tz}}') AS time,
           {RATES["online_share"]} AS online_share,
           {RATES["full_online_share"]} AS full_online_share,
           {RATES["paid_online_share"]} AS paid_online_share
    FROM {{db}}.portal_kpis_1d FINAL
    WHERE $__dateFilter(day) AND {SELECTION}
    GROUP BY day
    ORDER BY time
"""

DOSSIERS_PER_DAY: Final = f"""
    SELECT toDateTime(day, '{{tz}}') AS time, sum(submitted) AS submitted,
           sum(resolved) AS resolved, sum(rejected) AS rejected
    FROM {{db}}.portal_kpis_1d FINAL
    WHERE $__dateFilter(day) AND {SELECTION}
    GROUP BY day
    ORDER BY time
"""


def kpis_by(key: str) -> str:
    """The range's counts and rates per agency or procedure (its table; `vtops report`)."""
    return f"""
      SELECT {key}, {_COUNTS},
             {_RATE_COLUMNS}
      FROM {{db}}.portal_kpis_1d FINAL
      WHERE $__dateFilter(day) AND {SELECTION}
      GROUP BY {key}"""


def _breakdown(key: str, dimension: str, names: str, order: str) -> str:
    return f"""
    SELECT k.{key} AS {key}, d.name AS name,{names} k.submitted_dossiers AS submitted,
           k.resolved_dossiers AS resolved, k.rejected_dossiers AS rejected,
           k.paid_online_dossiers AS paid_online,
           {", ".join(f"k.{name} AS {name}" for name in RATES)}
    FROM ({kpis_by(key)}) AS k
    LEFT JOIN {{db}}.{dimension} AS d ON d.{key} = k.{key}
    ORDER BY {order}
    LIMIT 100
"""


BY_AGENCY: Final = _breakdown("agency", "agencies", " d.level AS level,", "submitted DESC")
BY_PROCEDURE: Final = _breakdown(
    "procedure_code",
    "procedures",
    " d.service_level AS service_level,",
    "on_time_rate ASC NULLS LAST, submitted DESC",
)

ON_TIME_STEPS: Final[tuple[Step, ...]] = (
    (None, "red"),
    (ON_TIME_LOW, "orange"),
    (ON_TIME_REF, "green"),
)
VNEID_STEPS: Final[tuple[Step, ...]] = (
    (None, "red"),
    (VNEID_BEFORE, "orange"),
    (VNEID_REF, "green"),
)
SIGNED_STEPS: Final[tuple[Step, ...]] = ((None, "red"), (99.0, "orange"), (SIGNED_REF, "green"))


def _rate_colours(cell: str | None = None) -> list[JSON]:
    """Per-column thresholds for the rates that have an article reference."""
    found = []
    for column, steps in (
        ("on_time_rate", ON_TIME_STEPS),
        ("vneid_l2_share", VNEID_STEPS),
        ("signed_share", SIGNED_STEPS),
    ):
        properties: dict[str, object] = {"thresholds": thresholds(*steps)}
        if cell:
            properties["custom.cellOptions"] = {"type": cell}
        found.append(override(column, properties))
    return found


def _percent_table() -> JSON:
    counts = ("submitted", "resolved", "rejected", "paid_online")
    return field_config(
        unit="percent",
        decimals=2,
        steps=((None, "text"),),
        overrides=[
            *[override(c, {"unit": "short", "decimals": 0}) for c in counts],
            *_rate_colours("color-text"),
        ],
    )


def build() -> JSON:
    layout = Layout()
    layout.row("Range")
    layout.add(
        stat(
            "Dossiers and online payments",
            "SELECT submitted_dossiers AS submitted, paid_online_dossiers AS paid_online "
            f"FROM ({KPIS_NOW})",
            description="Dossiers submitted, and those paid online, in the range.",
            fields=field_config(steps=((None, "blue"),)),
        ),
        6,
        5,
    )
    layout.add(
        stat(
            "Online and fully-online shares",
            f"SELECT online_share, full_online_share FROM ({KPIS_NOW})",
            description="Dossiers submitted online, and online through a fully-online "
            "(toàn trình) procedure, among all submitted. Article: 46 of 46 eligible "
            "procedures are fully online.",
            fields=field_config(unit="percent", decimals=2, steps=((None, "blue"),)),
        ),
        6,
        5,
    )
    for title, column, steps, note in (
        (
            "On-time resolution",
            "on_time_rate",
            ON_TIME_STEPS,
            f"Resolved by the legal deadline, among resolved dossiers with a known deadline. "
            f"Article: {ON_TIME_REF}% in 2024 (green); {ON_TIME_LOW}% in 2022 (orange).",
        ),
        (
            "VNeID level-2 share",
            "vneid_l2_share",
            VNEID_STEPS,
            f"Online dossiers authenticated with VNeID level 2. Article: {VNEID_REF}% by 9/2024 "
            f"(green), {VNEID_BEFORE:.0f}% before (orange); target 100%.",
        ),
        (
            "Results digitally signed",
            "signed_share",
            SIGNED_STEPS,
            "Resolved dossiers whose result was digitally signed. Article: 100%.",
        ),
    ):
        layout.add(
            stat(
                title,
                f"SELECT {column} FROM ({KPIS_NOW})",
                description=note,
                fields=field_config(unit="percent", decimals=2, steps=steps),
            ),
            4,
            5,
        )
    layout.row("Per day")
    layout.add(
        timeseries(
            "Rates per day vs the article",
            RATES_PER_DAY,
            description="Dashed: the article's 99.85% on time and 99.17% VNeID.",
            fields=field_config(
                unit="percent",
                color_mode="palette-classic",
                overrides=[
                    override(f"ref_{n}", {"custom.lineStyle": {"dash": [10, 10], "fill": "dash"}})
                    for n in ("on_time_rate", "vneid_l2_share")
                ],
            ),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Online, fully-online and paid-online shares per day",
            SHARES_PER_DAY,
            description="Shares of submitted dossiers (paid online: of online dossiers).",
            fields=field_config(unit="percent", color_mode="palette-classic"),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Dossiers per day",
            DOSSIERS_PER_DAY,
            description="Submitted, resolved and rejected dossiers per local day.",
            style="bars",
        ),
        24,
        7,
    )
    layout.row("Agencies and procedures")
    layout.add(
        table(
            "By agency",
            BY_AGENCY,
            description="Each agency's volume and rates; coloured against the article.",
            fields=_percent_table(),
        ),
        24,
        10,
    )
    layout.add(
        table(
            "By procedure (least on time first)",
            BY_PROCEDURE,
            description="Procedures ordered by on-time rate: the top rows need attention.",
            fields=_percent_table(),
        ),
        24,
        10,
    )
    variables = [
        query_variable("agency", "Agency", AGENCY_VARIABLE),
        query_variable("procedure", "Procedure", PROCEDURE_VARIABLE),
    ]
    return dashboard(
        UID,
        "Vũng Tàu · Digital government",
        description="Online public services of the city and its 17 wards: volume, online "
        "uptake, on-time resolution, VNeID, signatures and payments.",
        tags=["portal", "digital-government"],
        layout=layout,
        variables=variables,
        refresh="1m",
        time_from="now-30d",
    )
