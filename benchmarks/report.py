"""The printed result: a table of medians with every run's value, the ratios of medians,
and one JSON line at the end for machines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from benchmarks.progress import median, ratio

# (TARGETS id, label, numerator, denominator, target): ratios of medians of one invocation.
RATIOS = [
    ("P2", "P1/P2 worker ÷ Quix Streams", "p1_events_per_s", "p2_quix_events_per_s",
     "≥ 1.5, aim 3"),
    ("P3", "P1/P3 worker ÷ bare aiokafka", "p1_events_per_s", "p3_aiokafka_events_per_s",
     "≥ 0.5"),
]  # fmt: skip


@dataclass(frozen=True)
class Measure:
    target_id: str  # the TARGETS.md id it informs
    key: str  # its name in the JSON line
    label: str
    target: str  # as TARGETS.md states it, or "" when the number only explains another
    values: list[float | None]  # one per run

    @property
    def median(self) -> float | None:
        return median(self.values)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or value.is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def print_report(header: Mapping[str, object], measures: list[Measure]) -> None:
    by_key = {measure.key: measure for measure in measures}
    load_start, load_end = header["load_start"], header["load_end"]
    print(
        f"vtops throughput · {header['events']:,} camera events · {header['partitions']} "
        f"partitions · {header['runs']} runs · {header['cpus']} CPUs · {header['at']}"
    )
    print(f"load average at start {load_start}, at end {load_end}")
    print(
        f"fill: {header['fill_events_per_s']:,} events/s ({header['fill_s']} s, simulator "
        f"generation included; {header['city_minutes']} city minutes from a Monday 07:00) "
        f"with {header['producer']}"
    )
    print()
    rows = [("id", "measure", "target", "median", "runs")]
    for m in measures:
        runs = "  ".join(_number(value) for value in m.values)
        rows.append((m.target_id, m.label, m.target, _number(m.median), runs))
    ratios: dict[str, float | None] = {}
    for target_id, label, numerator, denominator, target in RATIOS:
        top, bottom = by_key[numerator], by_key[denominator]
        value = ratio(top.median, bottom.median)
        per_run = "  ".join(
            _number(ratio(a, b)) for a, b in zip(top.values, bottom.values, strict=True)
        )
        ratios[label.split()[0]] = value
        rows.append((target_id, label, target, _number(value), per_run))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].ljust(widths[2]),
            row[3].rjust(widths[3]),
            row[4],
        ]
        print("  ".join(cells))
    print()
    print("ratios are of the medians above (runs column: each run's own ratio)")
    document = {
        **header,
        "medians": {m.key: m.median for m in measures},
        "runs_values": {m.key: m.values for m in measures},
        "ratios": ratios,
    }
    print(orjson.dumps(document).decode())
