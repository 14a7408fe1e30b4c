"""The article's indicators, live: what the pipeline measured beside what the city reported.

Read from `payments_cashless_1h` and `portal_kpis_1d` (contract section 7) with FINAL, in three
parameterized queries; `vtops demo` prints them. A share is None when nothing was measured
that it could be a share of.

Two indicators are the nearest the tables allow:
- shops taking VietQR: the tables count terminals per ward, category and hour, not shops, so
  the value is the busiest hour's count of shop terminals in groups that took VietQR (the
  Vũng Tàu profile gives its 1,200 shops 1,574 terminals);
- on-time resolution: the share among resolutions whose deadline is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

Unit = Literal["%", "count"]

SHOP_CATEGORIES = ("grocery", "market", "restaurant", "retail", "fuel", "other")
NOT_REPORTED = "no figure in the article"

_CASHLESS = "vietqr + card + ewallet + bank_transfer"
_ALL = f"cash + {_CASHLESS}"
_SINCE_HOUR = "window_start >= fromUnixTimestamp64Milli({since_ms:Int64})"
# Days are the city's: the local day of `since` in the profile's zone, computed in Python.
_SINCE_DAY = "day >= {since_day:Date}"


def _bill_share(category: str) -> str:
    # Category names are constants of this module, never input.
    return (
        f"100 * sumIf({_CASHLESS}, category = '{category}') "
        f"/ nullIf(sumIf({_ALL}, category = '{category}'), 0)"
    )


PAYMENTS_SQL = f"""
    SELECT sum({_ALL}) AS payments,
           100 * sum({_CASHLESS}) / nullIf(payments, 0),
           100 * sum(vietqr) / nullIf(payments, 0),
           100 * sum(card) / nullIf(payments, 0),
           100 * sum(ewallet) / nullIf(payments, 0),
           100 * sum(bank_transfer) / nullIf(payments, 0),
           {_bill_share("utility_electricity")},
           {_bill_share("utility_water")},
           {_bill_share("utility_telecom")}
    FROM {{db:Identifier}}.payments_cashless_1h FINAL
    WHERE {_SINCE_HOUR}"""

QR_SHOPS_SQL = f"""
    SELECT maxOrNull(terminals) FROM (
        SELECT window_start, sum(terminals) AS terminals
        FROM {{db:Identifier}}.payments_cashless_1h FINAL
        WHERE {_SINCE_HOUR} AND category IN {{shops:Array(String)}} AND vietqr > 0
        GROUP BY window_start)"""

PORTAL_SQL = f"""
    SELECT sum(submitted) AS dossiers,
           100 * sum(submitted_online) / nullIf(dossiers, 0),
           100 * sum(submitted_full_online) / nullIf(dossiers, 0),
           100 * sum(resolved_on_time)
               / nullIf(toInt64(sum(resolved)) - toInt64(sum(resolved_no_due)), 0),
           100 * sum(submitted_vneid_l2) / nullIf(sum(submitted_online), 0),
           100 * sum(resolved_signed) / nullIf(sum(resolved), 0),
           100 * sum(paid_online) / nullIf(sum(submitted_online), 0)
    FROM {{db:Identifier}}.portal_kpis_1d FINAL
    WHERE {_SINCE_DAY}"""


@dataclass(frozen=True)
class Indicator:
    name: str
    value: float | None
    unit: Unit
    reported: str  # the article's value or target, as text


# (name, unit, reported) in the order of each query's columns.
PAYMENT_INDICATORS: tuple[tuple[str, Unit, str], ...] = (
    ("Payments counted at terminals", "count", NOT_REPORTED),
    ("Payments made cashless", "%", NOT_REPORTED),
    ("Payments by VietQR", "%", NOT_REPORTED),
    ("Payments by card", "%", NOT_REPORTED),
    ("Payments by e-wallet", "%", NOT_REPORTED),
    ("Payments by bank transfer", "%", NOT_REPORTED),
    ("Electricity bills paid cashless", "%", "100%"),
    ("Water bills paid cashless", "%", "85%"),
    ("Telecom and cable TV bills paid cashless", "%", "> 80%"),
)
QR_SHOPS_INDICATOR: tuple[str, Unit, str] = (
    "Shop terminals taking VietQR (busiest hour)",
    "count",
    "100% of shops (1,200 / 1,200)",
)
PORTAL_INDICATORS: tuple[tuple[str, Unit, str], ...] = (
    ("Dossiers submitted", "count", NOT_REPORTED),
    ("Dossiers submitted online", "%", "97.63%"),
    ("Dossiers submitted fully online", "%", "46 / 46 eligible procedures fully online"),
    ("Dossiers resolved on time", "%", "99.85% (2024)"),
    ("Online dossiers authenticated with VNeID level 2", "%", "99.17% by 9/2024; target 100%"),
    ("Results digitally signed", "%", "100%"),
    ("Online dossiers paid online", "%", NOT_REPORTED),
)


def _since(since: datetime | None, tz: tzinfo) -> tuple[int, date]:
    """`since` as epoch ms and as its day in the city's zone `tz`."""
    if since is None:
        return 0, date(1970, 1, 1)
    if since.tzinfo is None or since.utcoffset() is None:
        raise ValueError(f"since: {since.isoformat()} has no UTC offset")
    return round(since.timestamp() * 1000), since.astimezone(tz).date()


def _indicators(specs: Sequence[tuple[str, Unit, str]], row: Sequence[Any]) -> list[Indicator]:
    return [
        Indicator(name, None if value is None else float(value), unit, reported)
        for (name, unit, reported), value in zip(specs, row, strict=True)
    ]


def article_indicators(
    client: Client, database: str, since: datetime | None = None, *, tz: tzinfo
) -> list[Indicator]:
    """The article's indicators over windows from `since` (a timezone-aware instant; payments
    by hour window start, dossiers by local day in the city's zone `tz`) to now; everything
    stored when None."""
    since_ms, since_day = _since(since, tz)
    parameters: dict[str, Any] = {
        "db": database,
        "since_ms": since_ms,
        "since_day": since_day,
        "shops": list(SHOP_CATEGORIES),
    }

    def row(sql: str) -> Sequence[Any]:
        return client.query(sql, parameters=parameters).result_rows[0]

    name, unit, reported = QR_SHOPS_INDICATOR
    qr_shops = row(QR_SHOPS_SQL)[0]
    return [
        *_indicators(PAYMENT_INDICATORS, row(PAYMENTS_SQL)),
        Indicator(name, None if qr_shops is None else float(qr_shops), unit, reported),
        *_indicators(PORTAL_INDICATORS, row(PORTAL_SQL)),
    ]
