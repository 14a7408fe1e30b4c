"""A ClickHouse table as a sink: one column-oriented insert per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor

from clickhouse_connect.driver.client import Client

from sinks.base import BatchSink, Row
from sinks.clickhouse.client import classify


class ClickHouseTable(BatchSink):
    def __init__(self, client: Client, database: str, table: str, executor: Executor) -> None:
        super().__init__()
        self.name = table
        self._client = client
        self._target = f"{database}.{table}"
        self._columns: list[str] | None = None
        # chDB and the HTTP client both block; one thread serialises every call to the store.
        self._executor = executor

    def _columns_of_table(self) -> list[str]:
        if self._columns is None:
            result = self._client.query(f"SELECT * FROM {self._target} LIMIT 0")
            self._columns = list(result.column_names)
        return self._columns

    def _insert(self, batch: Sequence[Row]) -> None:
        try:
            columns = self._columns_of_table()
            data = [[row[column] for row in batch] for column in columns]
            self._client.insert(self._target, data, column_names=columns, column_oriented=True)
        except Exception as error:
            raise classify(error) from error

    async def write(self, batch: Sequence[Row]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._insert, batch)
