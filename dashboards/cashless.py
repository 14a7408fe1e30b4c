"""Cashless adoption: how the city pays, by ward, category and method, against the article.

Reads `payments_cashless_1h` (hour windows per ward and category). The article's figures are
the references: all 1,200 grocery and general stores have a QR code, and utility bills are
paid cashless at 100% (electricity), 85% (water) and over 80% (cable TV and telecom).
"""

from __future__ import annotations

from typing import Final, get_args

from city.profile import CityProfile, MerchantCategory, PaymentCategory
from dashboards.layout import Layout, dashboard
from dashboards.panels import (
    JSON,
    Step,
    bargauge,
    custom_variable,
    field_config,
    override,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)
from dashboards.traffic_sql import WARD_VARIABLE

UID = "vtops-cashless"
UTILITY_TARGETS: Final = {
    "utility_electricity": 100.0,
    "utility_water": 85.0,
    "utility_telecom": 80.0,
}
QR_SHOPS_REPORTED: Final = 1200

SELECTION: Final = "ward IN (${ward:singlequote}) AND category IN (${category:singlequote})"
CASHLESS: Final = "(vietqr + card + ewallet + bank_transfer)"
ALL_METHODS: Final = "(cash + vietqr + card + ewallet + bank_transfer)"
SHARE: Final = f"round(100 * sum({CASHLESS}) / nullIf(sum({ALL_METHODS}), 0), 2)"
AMOUNT_SHARE: Final = (
    "round(100 * sum(cashless_amount_vnd)"
    " / nullIf(sum(cash_amount_vnd + cashless_amount_vnd), 0), 2)"
)
# Hour windows: buckets of at least an hour.
HOUR_BUCKET: Final = (
    "toStartOfInterval(window_start, toIntervalSecond(greatest($__interval_s, 3600)))"
)
_SHOPS: Final = ", ".join(f"'{c}'" for c in get_args(MerchantCategory))


def _share_of(category: str) -> str:
    return (
        f"round(100 * sumIf({CASHLESS}, category = '{category}') "
        f"/ nullIf(sumIf({ALL_METHODS}, category = '{category}'), 0), 2)"
    )


SHARE_NOW: Final = f"""
    SELECT {SHARE} AS cashless_share,
           {AMOUNT_SHARE} AS cashless_amount_share
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND {SELECTION}
"""

# The table counts distinct terminals per ward, category and hour, not per method: summing
# the groups that took QR payments gives an upper bound of the terminals active on QR.
QR_TERMINALS_NOW: Final = f"""
    SELECT sumIf(terminals, vietqr > 0) AS qr_active_terminals
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE window_start = (
            SELECT max(window_start) FROM {{db}}.payments_cashless_1h
            WHERE $__timeFilter(window_start))
      AND category IN ({_SHOPS}) AND ward IN (${{ward:singlequote}})
"""

UTILITIES_NOW: Final = f"""
    SELECT {_share_of("utility_electricity")} AS electricity,
           {_share_of("utility_water")} AS water,
           {_share_of("utility_telecom")} AS telecom
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND ward IN (${{ward:singlequote}})
"""


def share_by(label: str) -> str:
    return f"""
    SELECT {HOUR_BUCKET} AS time, {label}, {SHARE} AS cashless_share
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND {SELECTION}
    GROUP BY time, {label}
    ORDER BY time, {label}
"""


BY_METHOD: Final = f"""
    SELECT {HOUR_BUCKET} AS time, sum(cash) AS cash, sum(vietqr) AS vietqr, sum(card) AS card,
           sum(ewallet) AS ewallet, sum(bank_transfer) AS bank_transfer
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND {SELECTION}
    GROUP BY time
    ORDER BY time
"""

UTILITIES_OVER_TIME: Final = f"""
    SELECT {HOUR_BUCKET} AS time,
           {_share_of("utility_electricity")} AS electricity,
           {_share_of("utility_water")} AS water,
           {_share_of("utility_telecom")} AS telecom,
           {UTILITY_TARGETS["utility_electricity"]} AS target_electricity,
           {UTILITY_TARGETS["utility_water"]} AS target_water,
           {UTILITY_TARGETS["utility_telecom"]} AS target_telecom
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND ward IN (${{ward:singlequote}})
      AND category IN ('utility_electricity', 'utility_water', 'utility_telecom')
    GROUP BY time
    ORDER BY time
"""


def qr_terminals_over_time(shop_terminals: int) -> str:
    return f"""
    SELECT window_start AS time, sumIf(terminals, vietqr > 0) AS qr_active_terminals,
           {shop_terminals} AS shop_terminals
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND category IN ({_SHOPS})
      AND ward IN (${{ward:singlequote}})
    GROUP BY time
    ORDER BY time
"""


def _method_share(method: str) -> str:
    return f"round(100 * sum({method}) / nullIf(sum({ALL_METHODS}), 0), 2) AS {method}_share"


# Counts and shares over the range; the wards' table and `vtops report` read them.
SHARES: Final = f"""sum(reports) AS reports, sum({ALL_METHODS}) AS payments,
             {SHARE} AS cashless_share,
             {_method_share("vietqr")}, {_method_share("card")}, {_method_share("ewallet")},
             {_method_share("bank_transfer")},
             {AMOUNT_SHARE} AS amount_share"""


def shares_by(label: str) -> str:
    """`SHARES` per ward or category over the time range, unordered."""
    return f"""
      SELECT {label}, {SHARES}
      FROM {{db}}.payments_cashless_1h FINAL
      WHERE $__timeFilter(window_start) AND {SELECTION}
      GROUP BY {label}"""


BY_WARD: Final = f"""
    SELECT p.ward AS ward, w.name AS name, w.unit_2025_name AS unit_2025, p.reports AS reports,
           p.cashless_share AS cashless_share, p.vietqr_share AS vietqr_share,
           p.card_share AS card_share, p.ewallet_share AS ewallet_share,
           p.bank_transfer_share AS bank_transfer_share, p.amount_share AS cashless_amount_share
    FROM ({shares_by("ward")}) AS p
    LEFT JOIN {{db}}.wards AS w ON w.ward = p.ward
    ORDER BY cashless_share DESC
"""


def _target_steps(target: float) -> tuple[Step, ...]:
    return ((None, "red"), (target - 10, "orange"), (target, "green"))


def _percent(steps: tuple[Step, ...] = ((None, "blue"),)) -> JSON:
    return field_config(unit="percent", steps=steps, decimals=1, minimum=0, maximum=100)


def build(profile: CityProfile) -> JSON:
    shop_terminals = sum(len(m.terminals) for m in profile.merchants)
    layout = Layout()
    layout.row("City")
    layout.add(
        stat(
            "Cashless share of payments",
            SHARE_NOW,
            description="Payments by QR, card, e-wallet or transfer among all counted, and the "
            "same share of the amounts (VND), in the time range.",
            fields=_percent(),
        ),
        8,
        6,
    )
    layout.add(
        stat(
            "Shop terminals active on QR, latest hour",
            QR_TERMINALS_NOW,
            description=f"Upper bound: terminals of shop groups (ward × category) that took QR "
            f"payments in the latest hour. Article: {QR_SHOPS_REPORTED:,} of {QR_SHOPS_REPORTED:,} "
            f"stores have a QR code; the profile gives them {shop_terminals:,} terminals.",
            fields=field_config(
                steps=(
                    (None, "red"),
                    (0.8 * shop_terminals, "orange"),
                    (float(shop_terminals), "green"),
                ),
                maximum=shop_terminals,
            ),
        ),
        6,
        6,
    )
    overrides = [
        override(name, {"thresholds": thresholds(*_target_steps(target))})
        for name, target in zip(
            ("electricity", "water", "telecom"), UTILITY_TARGETS.values(), strict=True
        )
    ]
    layout.add(
        bargauge(
            "Utility bills paid cashless vs target",
            UTILITIES_NOW,
            description="Article targets: electricity 100%, water 85%, cable TV and telecom 80%. "
            "Green at the target, orange within 10 points.",
            fields=field_config(
                unit="percent", minimum=0, maximum=100, decimals=1, overrides=overrides
            ),
        ),
        10,
        6,
    )
    layout.row("Over time")
    layout.add(
        timeseries(
            "Cashless share by ward",
            share_by("ward"),
            description="Hourly share of cashless payments per ward.",
            fields=_series("ward"),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Cashless share by category",
            share_by("category"),
            description="Hourly share of cashless payments per shop category.",
            fields=_series("category"),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Payments by method",
            BY_METHOD,
            description="Counted payments per method (stacked).",
            stacking="normal",
            style="bars",
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Utility bills: cashless share vs targets",
            UTILITIES_OVER_TIME,
            description="Dashed lines: the article's targets.",
            fields=_dashed_targets(("electricity", "water", "telecom"), unit="percent"),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Shop terminals active on QR per hour",
            qr_terminals_over_time(shop_terminals),
            description="Upper bound of terminals taking QR payments (see the stat), against all "
            "shop terminals of the profile (dashed).",
            fields=_dashed_targets(("shop_terminals",), prefix=""),
        ),
        8,
        8,
    )
    layout.row("Wards")
    layout.add(
        table(
            "Wards: cashless adoption",
            BY_WARD,
            description="Shares of methods and of amounts per ward, highest first.",
            fields=field_config(
                unit="percent",
                decimals=1,
                overrides=[override("reports", {"unit": "short", "decimals": 0})],
            ),
        ),
        24,
        10,
    )
    variables = [
        query_variable("ward", "Ward", WARD_VARIABLE),
        custom_variable("category", "Category", list(get_args(PaymentCategory)), multi=True),
    ]
    return dashboard(
        UID,
        "Vũng Tàu · Cashless adoption",
        description="Cashless payments at shops, markets and utilities against the 2024 report.",
        tags=["payments", "digital-society"],
        layout=layout,
        variables=variables,
        refresh="1m",
        time_from="now-7d",
    )


def _series(label: str) -> JSON:
    config = _percent()
    config["defaults"]["displayName"] = f"${{__field.labels.{label}}}"
    config["defaults"]["color"] = {"mode": "palette-classic"}
    return config


def _dashed_targets(names: tuple[str, ...], prefix: str = "target_", unit: str = "short") -> JSON:
    """Reference series (constant columns of the query) drawn as dashed lines."""
    dashed = {"dash": [10, 10], "fill": "dash"}
    overrides = [override(f"{prefix}{n}", {"custom.lineStyle": dashed}) for n in names]
    return field_config(unit=unit, color_mode="palette-classic", overrides=overrides)
