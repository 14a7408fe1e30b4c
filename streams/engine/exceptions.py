"""Errors of the stream engine."""

from __future__ import annotations

from city.exceptions import VtopsError


class UnreadableBatch(VtopsError):
    """Records that neither aiokafka nor the engine's own batch reader can read: the worker
    stops (exit 1) rather than skip them unseen."""
