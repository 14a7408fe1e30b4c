"""Errors of the sinks; `TransientSinkError` is worth retrying, anything else is not."""

from __future__ import annotations

from city.exceptions import VtopsError


class SinkError(VtopsError):
    """A sink could not write a batch."""


class TransientSinkError(SinkError):
    """The store is unreachable or overloaded; the same batch may be written again later."""


class StoreInUseError(SinkError):
    """The embedded store is held by another process."""
