"""Terminal tallies for tests, and an independent model of what the contract says they produce."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tests.pipeline import InputStreamTimes

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
T0 = 1_726_272_000_000  # 2024-09-14T07:00:00+07:00, an hour boundary
METHODS = ("cash", "vietqr", "card", "ewallet", "bank_transfer")
GRACE_MS = 900_000


def tally(
    event_id: str,
    terminal_id: str,
    period_start: int,
    minutes: int = 10,
    *,
    ward: str = "phuong-1",
    category: str = "grocery",
    counts: dict[str, int] | None = None,
    amounts: dict[str, int] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "terminal_id": terminal_id,
        "merchant_id": f"M-{terminal_id}",
        "ward": ward,
        "category": category,
        "period_start": period_start,
        "period_end": period_start + minutes * MINUTE_MS,
        "counts": {"cash": 2, "vietqr": 3} if counts is None else counts,
    }
    if amounts is not None:
        event["amounts_vnd"] = amounts
    return event


@dataclass
class ExpectedCashless:
    """Contract sections 5 and 7 applied naively, tally by tally, in the order each input
    partition (the terminal's) holds them: lateness by that partition's stream time, before
    dedup; a window is final once every input partition has passed its end plus grace."""

    partitions: int
    windows: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    late: int = 0
    duplicates: int = 0
    _accepted: set[str] = field(default_factory=set)
    _clock: InputStreamTimes = field(init=False)

    def __post_init__(self) -> None:
        self._clock = InputStreamTimes(self.partitions, GRACE_MS // 2)

    def add(self, event: dict[str, Any]) -> None:
        now = self._clock.advance(event["terminal_id"], event["period_start"])
        start = event["period_start"] - event["period_start"] % HOUR_MS
        if start + HOUR_MS + GRACE_MS <= now:
            self.late += 1
            return
        if event["event_id"] in self._accepted:
            self.duplicates += 1
            return
        self._accepted.add(event["event_id"])
        window = self.windows.setdefault(
            (event["ward"], event["category"], start),
            {
                "reports": 0,
                "terminals": set(),
                **dict.fromkeys(METHODS, 0),
                "cash_amount": 0,
                "cashless_amount": 0,
            },
        )
        window["reports"] += 1
        window["terminals"].add(event["terminal_id"])
        for method, count in event["counts"].items():
            window[method] += count
        amounts = event.get("amounts_vnd", {})
        window["cash_amount"] += amounts.get("cash", 0)
        window["cashless_amount"] += sum(v for m, v in amounts.items() if m != "cash")

    def add_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.add(event)

    def rows(self) -> dict[tuple[str, str, int], tuple[Any, ...]]:
        """(ward, category, window start s) → (reports, terminals, 5 methods, cash amount,
        cashless amount, cashless share, final)."""
        rows = {}
        for (ward, category, start), w in self.windows.items():
            total = sum(w[m] for m in METHODS)
            share = (total - w["cash"]) / total if total else 0.0
            final = int(self._clock.passed(start + HOUR_MS + GRACE_MS))
            rows[(ward, category, start // 1000)] = (
                w["reports"],
                len(w["terminals"]),
                *(w[m] for m in METHODS),
                w["cash_amount"],
                w["cashless_amount"],
                share,
                final,
            )
        return rows


def random_tallies(
    rng: random.Random, count: int, span_ms: int, duplicate_share: float = 0.05
) -> list[dict[str, Any]]:
    """Tallies of 60 terminals in 6 wards and 4 categories with period starts in
    [T0, T0 + span_ms), with re-sent copies."""
    wards = ["phuong-1", "phuong-2", "thang-tam", "rach-dua", "long-son", "nguyen-an-ninh"]
    categories = ["grocery", "restaurant", "utility_water", "market"]
    terminals = [(f"VT-T-{n:05d}", wards[n % 6], categories[n % 4]) for n in range(60)]
    events: list[dict[str, Any]] = []
    for n in range(count):
        terminal_id, ward, category = rng.choice(terminals)
        counts = {m: rng.randint(0, 9) for m in METHODS if rng.random() < 0.7}
        amounts = (
            {m: c * rng.randint(10, 500) * 1000 for m, c in counts.items()}
            if rng.random() < 0.5
            else None
        )
        start = T0 + rng.randrange(span_ms)
        events.append(
            tally(
                f"r{n}",
                terminal_id,
                start,
                rng.randint(1, 60),
                ward=ward,
                category=category,
                counts=counts,
                amounts=amounts,
            )
        )
        if rng.random() < duplicate_share:
            events.append(dict(events[-1]))
    return events
