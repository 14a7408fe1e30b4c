"""Errors of the simulator; all derive from the project's root VtopsError."""

from __future__ import annotations

from city.exceptions import VtopsError


class SimulatorError(VtopsError):
    """A simulation cannot start or run as asked (bad option, delivery failure)."""
