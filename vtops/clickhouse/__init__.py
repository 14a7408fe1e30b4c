"""The local ClickHouse server: chDB's engine with its listeners open, in a process of its own."""

from __future__ import annotations

from vtops.clickhouse.exceptions import LocalServerError
from vtops.clickhouse.server import LocalClickHouse, ServerStatus

__all__ = ["LocalClickHouse", "LocalServerError", "ServerStatus"]
