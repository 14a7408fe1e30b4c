"""payments.terminal-counts for every shop and biller terminal of the city profile.

Pure: no I/O, no wall clock; the same profile, window and seed give the same tallies. Each
terminal reports what it took since its last report every 5–15 city minutes, day and night
(a closed shop reports zeros). Payments are Poisson with a rate that follows the category's
daily curve; each payment's method is drawn from the category's mix, calibrated to the
article: every one of the 1,200 shops takes VietQR, and utility bills are paid cashless at
about 100% (electricity), 85% (water) and 80% (telecom, cable TV).
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from random import Random

from city.profile import CityProfile
from city.topics import PAYMENT_COUNTS
from schemas.payments import METHODS, PaymentCategory, PaymentMethod
from simulator.demand import Curve, level_at
from simulator.mix import Table
from simulator.sources import Load, SimEvent
from simulator.timestamps import event_time

MINUTE_MS = 60_000
REPORT_EVERY_MS = (5 * MINUTE_MS, 15 * MINUTE_MS)
# A terminal in ten does not report amounts (older devices count payments only).
NO_AMOUNTS_ONE_IN = 10

# Share of payments by method (counts, not amounts). Shops: VietQR everywhere, cash still
# first in markets; bills: transfers and e-wallets, cash at the counter for water and telecom.
METHOD_MIX: dict[PaymentCategory, dict[PaymentMethod, float]] = {
    "grocery": {"cash": 55, "vietqr": 33, "card": 3, "ewallet": 6, "bank_transfer": 3},
    "market": {"cash": 70, "vietqr": 25, "card": 0, "ewallet": 3, "bank_transfer": 2},
    "restaurant": {"cash": 50, "vietqr": 35, "card": 7, "ewallet": 5, "bank_transfer": 3},
    "retail": {"cash": 40, "vietqr": 35, "card": 12, "ewallet": 5, "bank_transfer": 8},
    "fuel": {"cash": 45, "vietqr": 30, "card": 15, "ewallet": 7, "bank_transfer": 3},
    "other": {"cash": 50, "vietqr": 35, "card": 5, "ewallet": 5, "bank_transfer": 5},
    "utility_electricity": {
        "cash": 0.2,
        "vietqr": 15,
        "card": 2,
        "ewallet": 28,
        "bank_transfer": 54.8,
    },
    "utility_water": {"cash": 15, "vietqr": 15, "card": 2, "ewallet": 23, "bank_transfer": 45},
    "utility_telecom": {"cash": 19, "vietqr": 15, "card": 3, "ewallet": 33, "bank_transfer": 30},
}
# Payments per terminal-hour at the category's busiest time of a weekday.
PEAK_PER_HOUR: dict[PaymentCategory, float] = {
    "grocery": 14, "market": 18, "restaurant": 16, "retail": 5, "fuel": 30, "other": 6,
    "utility_electricity": 40, "utility_water": 25, "utility_telecom": 20,
}  # fmt: skip
# Mean payment in VND.
TICKET_VND: dict[PaymentCategory, int] = {
    "grocery": 85_000, "market": 60_000, "restaurant": 120_000, "retail": 350_000,
    "fuel": 150_000, "other": 150_000, "utility_electricity": 650_000,
    "utility_water": 210_000, "utility_telecom": 240_000,
}  # fmt: skip

SHOP: Curve = (
    (0, 0.0), (5.5, 0.0), (6, 0.5), (8, 0.8), (11, 0.9), (13, 0.75), (15, 0.6), (17, 1.0),
    (20, 0.9), (21.5, 0.4), (22.5, 0.0), (24, 0.0),
)  # fmt: skip
MARKET: Curve = (
    (0, 0.0), (4.5, 0.0), (5, 0.7), (6.5, 1.0), (9, 0.9), (11, 0.4), (14, 0.15), (16, 0.5),
    (18, 0.4), (19, 0.0), (24, 0.0),
)  # fmt: skip
MEALS: Curve = (
    (0, 0.05), (5.5, 0.05), (6.5, 0.8), (8, 0.7), (9.5, 0.25), (11, 0.9), (12, 1.0),
    (13.5, 0.3), (16.5, 0.3), (18, 0.9), (19.5, 1.0), (21, 0.6), (23, 0.15), (24, 0.05),
)  # fmt: skip
FUEL: Curve = (
    (0, 0.05), (5, 0.1), (6.5, 0.8), (7.5, 1.0), (9, 0.6), (12, 0.5), (16.5, 0.8),
    (17.5, 1.0), (19, 0.6), (22, 0.2), (24, 0.05),
)  # fmt: skip
# Bills are paid online around the clock, most in the daytime.
BILLS: Curve = (
    (0, 0.05), (6, 0.1), (8, 0.8), (10, 1.0), (12, 0.7), (14, 0.9), (17, 0.8), (20, 0.6),
    (22, 0.3), (24, 0.05),
)  # fmt: skip
CURVES: dict[PaymentCategory, Curve] = {
    "grocery": SHOP, "market": MARKET, "restaurant": MEALS, "retail": SHOP, "fuel": FUEL,
    "other": SHOP, "utility_electricity": BILLS, "utility_water": BILLS,
    "utility_telecom": BILLS,
}  # fmt: skip
# Weekends and holidays: visitors eat out and shop; bills wait for Monday.
WEEKEND_FACTOR: dict[PaymentCategory, float] = {
    "restaurant": 1.3, "retail": 1.15, "fuel": 1.1, "utility_electricity": 0.5,
    "utility_water": 0.5, "utility_telecom": 0.5,
}  # fmt: skip
HOLIDAY_FACTOR: dict[PaymentCategory, float] = {
    "grocery": 1.2, "market": 1.2, "restaurant": 1.8, "retail": 1.4, "fuel": 1.5, "other": 1.2,
    "utility_electricity": 0.2, "utility_water": 0.2, "utility_telecom": 0.2,
}  # fmt: skip

METHOD_TABLES: dict[PaymentCategory, Table[PaymentMethod]] = {
    category: Table(mix) for category, mix in METHOD_MIX.items()
}


@dataclass
class _Terminal:
    terminal_id: str
    merchant_id: str
    ward: str
    category: PaymentCategory
    volume: float  # this terminal's busyness relative to its category's
    reports_amounts: bool
    last_end_ms: int = 0


def poisson(rng: Random, mean: float) -> int:
    """A Poisson draw: by inversion for small means, else the normal approximation."""
    if mean <= 0:
        return 0
    if mean > 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


class TerminalTallies:
    """The payments.terminal-counts source (see sources.EventSource) of every terminal."""

    topic = PAYMENT_COUNTS

    def __init__(self, profile: CityProfile, rng: Random, *, holiday: bool = False) -> None:
        self._rng = rng
        self._tz = profile.tz
        self._holiday = holiday
        self._terminals: list[_Terminal] = []
        for payee in profile.payees:
            for terminal_id in payee.terminals:
                digest = zlib.crc32(terminal_id.encode())
                self._terminals.append(
                    _Terminal(
                        terminal_id,
                        payee.merchant_id,
                        payee.ward,
                        payee.category,
                        volume=0.6 + 0.8 * (digest % 1000) / 1000,
                        reports_amounts=(digest >> 10) % NO_AMOUNTS_ONE_IN != 0,
                    )
                )
        self._schedule: list[tuple[int, int]] = []  # (next report ms, terminal index)

    def natural_load(self, start_ms: int, end_ms: int) -> Load:
        """One tally per terminal every 10 minutes on average, whatever the rate scale."""
        low, high = REPORT_EVERY_MS
        return Load(scaled=0.0, fixed=len(self._terminals) * 1000 / ((low + high) / 2))

    def events(self, start_ms: int, end_ms: int, rate_scale: float) -> Iterator[SimEvent]:
        if not self._schedule:
            self._start(start_ms)
        while self._schedule and self._schedule[0][0] < end_ms:
            report_ms, index = heapq.heappop(self._schedule)
            terminal = self._terminals[index]
            event = self._tally(terminal, report_ms)
            terminal.last_end_ms = report_ms
            heapq.heappush(self._schedule, (report_ms + self._interval(), index))
            if report_ms >= start_ms:
                yield SimEvent(PAYMENT_COUNTS, terminal.terminal_id, event, "tally", report_ms)

    def _interval(self) -> int:
        low, high = REPORT_EVERY_MS
        return low + int(self._rng.random() * (high - low))

    def _start(self, start_ms: int) -> None:
        # Each terminal's first report falls somewhere in its first interval; its period
        # began one interval before.
        for index, terminal in enumerate(self._terminals):
            first = start_ms + int(self._rng.random() * REPORT_EVERY_MS[1])
            terminal.last_end_ms = first - self._interval()
            self._schedule.append((first, index))
        heapq.heapify(self._schedule)

    def rate_per_hour(self, category: PaymentCategory, at_ms: int) -> float:
        """Payments per terminal-hour of a category at a city time (before its volume)."""
        local = datetime.fromtimestamp(at_ms / 1000, self._tz)
        level = level_at(CURVES[category], local.hour + local.minute / 60)
        if self._holiday:
            level *= HOLIDAY_FACTOR.get(category, 1.0)
        elif local.weekday() >= 5:
            level *= WEEKEND_FACTOR.get(category, 1.0)
        return PEAK_PER_HOUR[category] * level

    def _tally(self, terminal: _Terminal, report_ms: int) -> dict[str, object]:
        rng, start_ms = self._rng, terminal.last_end_ms
        hours = (report_ms - start_ms) / 3_600_000
        mean = self.rate_per_hour(terminal.category, (start_ms + report_ms) // 2)
        payments = poisson(rng, mean * terminal.volume * hours)
        counts = dict.fromkeys(METHODS, 0)
        table = METHOD_TABLES[terminal.category]
        for _ in range(payments):
            counts[table.pick(rng.random())] += 1
        event: dict[str, object] = {
            "event_id": f"{rng.getrandbits(128):032x}",
            "terminal_id": terminal.terminal_id,
            "merchant_id": terminal.merchant_id,
            "ward": terminal.ward,
            "category": terminal.category,
            "period_start": event_time(start_ms, self._tz, rng),
            "period_end": event_time(report_ms, self._tz, rng),
            # A method nobody used is left out: the contract reads it as 0.
            "counts": {method: n for method, n in counts.items() if n},
        }
        if terminal.reports_amounts:
            ticket = TICKET_VND[terminal.category]
            event["amounts_vnd"] = {
                method: round(n * ticket * (0.7 + 0.6 * rng.random()) / 1000) * 1000
                for method, n in counts.items()
                if n
            }
        return event
