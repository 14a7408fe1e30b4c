"""Errors of the local ClickHouse server (`vtops clickhouse start|stop|status`)."""

from __future__ import annotations

from city.exceptions import VtopsError


class LocalServerError(VtopsError):
    """The local ClickHouse server cannot start or stop; the message says what to do next."""
