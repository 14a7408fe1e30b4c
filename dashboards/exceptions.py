"""Errors of the dashboards package, under the project's root error."""

from __future__ import annotations

from city.exceptions import VtopsError


class DashboardError(VtopsError):
    """Building or publishing the operations screens failed."""


class GrafanaPushError(DashboardError):
    """Grafana could not be reached or refused a request; the message names the step."""
