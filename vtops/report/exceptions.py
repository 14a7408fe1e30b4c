"""The report's errors, under the project's root error: a CLI prints them in one line."""

from __future__ import annotations

from city.exceptions import VtopsError


class ReportError(VtopsError):
    """A report that cannot be made as asked."""


class ReportPeriodError(ReportError):
    """--from/--to do not make a period."""
