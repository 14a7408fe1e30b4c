"""The Prometheus text exposition format (0.0.4), which is all a scrape needs.

Written here rather than through `prometheus-client`: the worker keeps its numbers in its own
counters already (streams/engine/windows.py, the checkpointer, the sinks), so a scrape only
reads them; a client library's registry would add a second copy to keep in step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge"]


@dataclass
class Family:
    """One metric: its name, type, help line and a sample per label set."""

    name: str
    kind: Kind
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: Iterable[Family]) -> str:
    """The families as one scrape body; a family without samples keeps its HELP and TYPE."""
    lines: list[str] = []
    for family in families:
        help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
        lines += [f"# HELP {family.name} {help_text}", f"# TYPE {family.name} {family.kind}"]
        for labels, value in family.samples:
            pairs = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
            selector = f"{family.name}{{{pairs}}}" if pairs else family.name
            lines.append(f"{selector} {_number(value)}")
    return "\n".join(lines) + "\n"
