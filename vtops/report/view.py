"""What the page is made of, independent of HTML: sections of notices, charts and tables."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cell:
    text: str
    metric: str | None = None  # names a number the tests read back from the page
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    empty: str | None = None  # said instead of a table without rows


@dataclass
class Section:
    title: str
    notices: list[str] = field(default_factory=list)
    charts: list[tuple[str, str]] = field(default_factory=list)  # (title, inline SVG)
    tables: list[Table] = field(default_factory=list)
