"""Durable stage state: every stage's cut of one checkpoint in one atomic ClickHouse insert.

A checkpoint writes, for each partition of each stage, the entries that changed (windows,
keyed facts), tombstones for those that closed, and a meta entry with the source offset and
clocks they reflect. A single insert into an unpartitioned MergeTree lands as one part or not
at all, so a restarted worker always reads a consistent cut: the state exactly as it was after
`offset`. Dedup ids are not stored; the restore re-reads them (streams/engine/restore.py).

Each row's version is the partition's source offset at the cut plus one (nothing read: 0). The
state after an offset is a function of the input alone, so a worker that lost a partition and
writes late can never replace a newer state: its rows carry smaller offsets and lose under FINAL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import classify
from sinks.exceptions import SinkError

META_KEY = "meta"
TABLE = "stream_state"

T = TypeVar("T")


class StateRow(NamedTuple):
    """One row of `stream_state`: an entry of a stage's partition, or its tombstone."""

    source_topic: str
    partition: int
    key: str
    checkpoint: int  # the row's version: the partition's offset at the cut, plus one
    deleted: int
    state: bytes  # the entry's value as JSON; empty for a tombstone


COLUMNS = list(StateRow._fields)


def entry(topic: str, partition: int, key: str, offset: int, value: Any) -> StateRow:
    return StateRow(topic, partition, key, offset + 1, 0, orjson.dumps(value))


def tombstone(topic: str, partition: int, key: str, offset: int) -> StateRow:
    return StateRow(topic, partition, key, offset + 1, 1, b"")


class StateStore:
    def __init__(
        self,
        client: Client,
        database: str,
        executor: Executor,
        embedded_at: Path | None = None,
        migrated: Future[Any] | None = None,
    ) -> None:
        self._client = client
        self._table = f"{database}.{TABLE}"
        # chDB and the HTTP client both block; one thread serialises every call to the store.
        self._executor = executor
        # The embedded store's directory: chDB goes on writing into deleted files if it goes.
        self._embedded_at = embedded_at
        # Entries read ahead for one assignment (`preload`), until `load` takes them.
        self._preloaded: dict[tuple[str, int], dict[str, Any]] = {}
        # The schema being made while the worker starts (streams/app.py). It runs first in the
        # store's thread, so every call comes after it; waited for here so that a failed
        # migration stops the engine with its own error. The sinks write only in checkpoints,
        # after an assignment has loaded its state through this store.
        self._migrated = migrated

    async def _in_store_thread(self, call: Callable[..., T], *args: Any) -> T:
        if self._migrated is not None:
            await asyncio.wrap_future(self._migrated)
            self._migrated = None
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    def ensure_present(self) -> None:
        """SinkError when the embedded store's directory has been removed: every write would
        fail (or vanish), and nothing may be committed any more."""
        if self._embedded_at is not None and not self._embedded_at.is_dir():
            raise SinkError(
                f"the embedded ClickHouse store at {self._embedded_at} is gone: nothing more "
                "can be saved; restart the worker to rebuild it from the topics"
            )

    def _save(self, rows: list[StateRow]) -> None:
        self.ensure_present()
        try:
            # One insert for every stage and partition: all land together or none does.
            self._client.insert(self._table, rows, column_names=COLUMNS)
        except Exception as error:
            raise classify(error) from error

    async def save(self, rows: list[StateRow]) -> None:
        if rows:
            await self._in_store_thread(self._save, rows)

    def _load(self, topic: str, partition: int) -> dict[str, Any]:
        result = self._client.query(
            f"SELECT key, state FROM {self._table} FINAL "
            "WHERE source_topic = {topic:String} AND partition = {partition:UInt32}",
            parameters={"topic": topic, "partition": partition},
        )
        return {key: orjson.loads(value) for key, value in result.result_rows}

    async def load(self, topic: str, partition: int) -> dict[str, Any]:
        """The partition's entries as of its last checkpoint; empty when it never had one."""
        preloaded = self._preloaded.pop((topic, partition), None)
        if preloaded is not None:
            return preloaded
        return await self._in_store_thread(self._load, topic, partition)

    def _load_many(self, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
        result = self._client.query(
            f"SELECT source_topic, partition, key, state FROM {self._table} FINAL "
            "WHERE has({topics:Array(String)}, source_topic)",
            parameters={"topics": sorted({topic for topic, _ in wanted})},
        )
        found: dict[tuple[str, int], dict[str, Any]] = {where: {} for where in wanted}
        for topic, partition, key, value in result.result_rows:
            entries = found.get((topic, partition))
            if entries is not None:  # another worker's partition
                entries[key] = orjson.loads(value)
        return found

    async def preload(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Read the entries of an assignment's partitions in one query, for `load` to answer
        from: a worker that owns every partition asked 30 queries one after the other, 0.4-1.3 s
        of its start (issue 20). The caller `forget`s what `load` did not take."""
        wanted = set(partitions)
        if wanted:
            self._preloaded = await self._in_store_thread(self._load_many, wanted)

    def forget(self) -> None:
        """Drop what `preload` read: the next assignment reads the store again."""
        self._preloaded = {}
