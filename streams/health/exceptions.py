"""Errors of the worker's health and metrics pages."""

from __future__ import annotations

from city.exceptions import VtopsError


class MetricsPortError(VtopsError):
    """The worker cannot listen on VTOPS_METRICS_PORT (taken, or an address it does not have)."""
