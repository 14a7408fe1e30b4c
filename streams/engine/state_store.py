"""Durable window state: one atomic ClickHouse insert per partition and checkpoint.

A checkpoint writes, for each partition, the windows that changed, tombstones for the windows
that closed, and a meta row with the source offset and stream time they reflect. A single
insert into an unpartitioned MergeTree lands as one part or not at all, so a restarted worker
always reads a consistent cut: the windows exactly as they were after `offset`. Dedup ids are
not stored; the restore re-reads them from the source topic (streams/restore.py).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import classify
from streams.definition import WindowedStream
from streams.windows import PartitionCounters, PartitionWindows, Window, WindowKey

A = TypeVar("A")

META_KEY = "meta"
TABLE = "stream_state"
COLUMNS = ["source_topic", "partition", "key", "checkpoint", "deleted", "state"]


def window_state_key(key: WindowKey) -> str:
    group, start_ms = key
    return "w:" + orjson.dumps([*group, start_ms]).decode()


def keyed_state_key(key: str) -> str:
    return "k:" + key


@dataclass
class PartitionCut(Generic[A]):
    """What one checkpoint persists for one partition, taken synchronously from the state."""

    partition: int
    offset: int
    stream_time_ms: int | None
    counters: dict[str, int]
    open_windows: int
    changed: list[Window[A]]
    closed: list[Window[A]]
    keyed_changed: dict[str, Any]
    keyed_deleted: list[str]


class StateStore(Generic[A]):
    def __init__(
        self,
        client: Client,
        database: str,
        executor: Executor,
        stream: WindowedStream[A],
        source_topic: str,
    ) -> None:
        self._client = client
        self._table = f"{database}.{TABLE}"
        self._executor = executor
        self._stream = stream
        self._source_topic = source_topic
        self._checkpoint = 0

    def _window_state(self, window: Window[A]) -> bytes:
        return orjson.dumps(
            {
                "group": list(window.group),
                "start": window.start_ms,
                "end": window.end_ms,
                "first": window.first_offset,
                "last": window.last_offset,
                "acc": self._stream.acc_to_state(window.acc),
            }
        )

    def rows(self, cut: PartitionCut[A]) -> list[list[Any]]:
        """The cut as stream_state rows. Call it when the cut is taken: windows are live
        objects that the agent keeps folding into while the checkpoint's writes are under way."""
        self._checkpoint += 1
        base = [self._source_topic, cut.partition]
        rows = [
            [*base, window_state_key(w.key), self._checkpoint, 0, self._window_state(w)]
            for w in cut.changed
        ]
        rows += [[*base, window_state_key(w.key), self._checkpoint, 1, b""] for w in cut.closed]
        rows += [
            [*base, keyed_state_key(k), self._checkpoint, 0, orjson.dumps(v)]
            for k, v in cut.keyed_changed.items()
        ]
        rows += [[*base, keyed_state_key(k), self._checkpoint, 1, b""] for k in cut.keyed_deleted]
        meta = {"offset": cut.offset, "stream_time": cut.stream_time_ms, "counters": cut.counters}
        rows.append([*base, META_KEY, self._checkpoint, 0, orjson.dumps(meta)])
        return rows

    def _save(self, rows: list[list[Any]]) -> None:
        try:
            # One insert for every partition: all land together or none does.
            self._client.insert(self._table, rows, column_names=COLUMNS)
        except Exception as error:
            raise classify(error) from error

    async def save(self, rows: list[list[Any]]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._save, rows)

    def _load(self, partition: int) -> PartitionWindows[A] | None:
        result = self._client.query(
            f"SELECT key, state, checkpoint FROM {self._table} FINAL "
            "WHERE source_topic = {topic:String} AND partition = {partition:UInt32}",
            parameters={"topic": self._source_topic, "partition": partition},
        )
        rows = result.result_rows
        if not rows:
            return None
        state = self._stream.new_state()
        for key, value, checkpoint in rows:
            self._checkpoint = max(self._checkpoint, checkpoint)
            decoded = orjson.loads(value)
            if key == META_KEY:
                state.offset = decoded["offset"]
                state.stream_time_ms = decoded["stream_time"]
                state.counters = PartitionCounters(**decoded["counters"])
            elif key.startswith("k:"):
                state.keyed[key[2:]] = decoded
            else:
                window = Window(
                    tuple(decoded["group"]),
                    decoded["start"],
                    decoded["end"],
                    self._stream.acc_from_state(decoded["acc"]),
                    decoded["first"],
                    decoded["last"],
                )
                state.windows[window.key] = window
        return state

    async def load(self, partition: int) -> PartitionWindows[A] | None:
        """The partition's state as of its last checkpoint, or None when it never had one."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._load, partition
        )
