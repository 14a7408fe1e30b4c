"""`vtops reprocess`: recompute the windows that start in [T1, T2) from the input topics with
this release's code and settings, and replace their rows, while a live worker goes on.

The worker's own stages fold every retained message of the chosen streams into fresh state,
outside the worker (nothing goes to the topics or `stream_state`), so each window comes out as
a fresh run with today's settings would write it. Re-keyed streams are routed in memory: the
router's forwards and watermarks go straight to one window stage, as the result does not
depend on how windows are spread over partitions.

Versions stay monotonic across runs: a reprocessed row carries `epoch << 40 | 2 × last offset
+ final`, the epoch one above the highest in its table, so it replaces every row the worker or
an earlier reprocessing wrote (the worker's versions stay below 2^40: offsets below 5 × 10^11).
Only final windows are written: one still open belongs to the live worker, whose later rows
would lose to the epoch. Windows in range that no longer exist are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from clickhouse_connect.driver.client import Client

from city.clock import CITY_TZ
from sinks.base import BatchSink, Row
from streams.engine.checkpoint import Cut, Stage, StageSinks, Step
from streams.engine.route_stage import RouteStage
from streams.engine.window_stage import WindowStage
from streams.settings import StreamSettings
from vtops.replay.exceptions import ReplayError
from vtops.replay.offline import NothingSaved, discarding_sinks
from vtops.replay.selection import StreamTopics

EPOCH_SHIFT = 40
# Where the window tables say when a window starts: a minute or an hour, or a city day.
START_COLUMNS = ("window_start", "day")
_BATCH = 10_000

Key = tuple[Any, ...]
Progress = Callable[[int], None]


class _Collect(BatchSink):
    """The window rows of one table, as the cuts give them (never flushed)."""

    name = "collect"

    async def write(self, batch: Sequence[Row]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Forward:
    """A router's forward or watermark as the window stage reads it from a re-key topic."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int = -1


@dataclass
class Recomputed:
    """The last row of every window a stream's fold produced, by the table's key."""

    table: str
    rows: dict[Key, Row] = field(default_factory=dict)


@dataclass
class TableChanges:
    table: str
    written: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    open_skipped: int = 0


def start_column(key_columns: list[str]) -> str:
    """The key column that says when a window starts (contract section 7)."""
    return next(c for c in key_columns if c in START_COLUMNS)


def window_start_ms(row: Row, column: str) -> int:
    """When the row's window starts; a day starts at midnight, city time."""
    value = row[column]
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    assert isinstance(value, date)
    return int(datetime(value.year, value.month, value.day, tzinfo=CITY_TZ).timestamp() * 1000)


class Recompute:
    """Folds the retained input of streams into fresh state with the worker's stages."""

    def __init__(
        self, settings: StreamSettings, client_config: dict[str, Any], key_columns: list[str]
    ) -> None:
        self._settings = settings
        self._client_config = client_config
        self._key_columns = key_columns
        self._collect = _Collect()

    async def stream(
        self,
        topics: StreamTopics,
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        progress: Progress,
    ) -> Recomputed:
        stream = topics.stream
        sinks = discarding_sinks(**{stream.window_table: self._collect})
        store = NothingSaved()
        result = Recomputed(stream.window_table)
        inputs = sorted(tp.partition for tp in ends if tp.topic == topics.source)
        windows = WindowStage(
            stream,
            topics.by_group or topics.source,
            sinks,
            store,
            self._client_config,
            self._settings.max_clock_skew_s,
            lambda _topic, _partition: None,
        )
        router: RouteStage | None = None
        forwards = _Collect()
        if topics.by_group is not None:
            router = RouteStage(
                stream,
                topics.source,
                topics.by_group,
                StageSinks(sinks.tables, forwards, sinks.dead_letter_topic),
                store,
                self._settings.max_clock_skew_s,
                self._settings.idle_partition_s,
                lambda _topic, _partition: None,
                lambda topic: len(inputs) if topic == topics.source else 1,
            )
            await windows.assign(0)
            windows.starts_at(0, 0)
        for partition in inputs:
            await (router or windows).assign(partition)
            tp = TopicPartition(topics.source, partition)
            (router or windows).starts_at(partition, starts[tp])
        next_offset = 0  # of the in-memory re-key partition
        if all(starts[tp] >= ends[tp] for tp in ends if tp.topic == topics.source):
            return result  # nothing to read (a consumer that never fetched fails to stop)
        consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **self._client_config)
        await consumer.start()
        try:
            async for tp, batch in _read_all(consumer, topics.source, inputs, starts, ends):
                progress(len(batch))
                if router is None:
                    windows.fold(tp.partition, batch)
                else:
                    router.fold(tp.partition, batch)
                    cut = Cut()
                    router.cut(cut, 0.0)
                    routed = [
                        _Forward(next_offset + n, r["key"], r["value"], r["headers"])
                        for n, r in enumerate(cut.writes.get((Step.TOPICS, forwards), []))
                    ]
                    next_offset += len(routed)
                    windows.fold(0, routed)
                self._cut(windows, result)
        finally:
            await consumer.stop()
        return result

    def _cut(self, stage: Stage, result: Recomputed) -> None:
        cut = Cut()
        stage.cut(cut, 0.0)
        for row in cut.writes.get((Step.WINDOWS, self._collect), []):
            result.rows[tuple(row[c] for c in self._key_columns)] = row


async def _read_all(
    consumer: AIOKafkaConsumer,
    topic: str,
    partitions: list[int],
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> Any:
    """Every partition's records in [start, end), interleaved as one consumer fetches them."""
    left = {
        TopicPartition(topic, p)
        for p in partitions
        if starts[TopicPartition(topic, p)] < ends[TopicPartition(topic, p)]
    }
    if not left:
        return
    consumer.assign(sorted(left))
    for tp in left:
        consumer.seek(tp, starts[tp])
    idle = 0
    while left:
        batches: dict[TopicPartition, list[ConsumerRecord]] = await consumer.getmany(
            *left, timeout_ms=1000, max_records=_BATCH
        )
        idle = 0 if batches else idle + 1
        if idle >= 30:
            raise ReplayError(f"{topic}: no messages for 30 s with {len(left)} partitions unread")
        for tp, records in batches.items():
            kept = [r for r in records if r.offset < ends[tp]]
            if kept:
                yield tp, kept
        for tp in list(left):
            if await consumer.position(tp) >= ends[tp]:
                left.discard(tp)
                consumer.pause(tp)


def apply_changes(
    client: Client,
    database: str,
    recomputed: Recomputed,
    key_columns: list[str],
    from_ms: int,
    to_ms: int,
    write: bool = True,
) -> TableChanges:
    """Write the final recomputed windows that start in [from_ms, to_ms) with a new epoch,
    and delete the rows of windows in range that no longer exist; `write` False only counts."""
    table = recomputed.table
    changes = TableChanges(table)
    target = f"{database}.{table}"
    top = client.query(f"SELECT max(version) FROM {target}").result_rows[0][0] or 0
    epoch = (int(top) >> EPOCH_SHIFT) + 1
    existing = _rows_in_range(client, target, key_columns, from_ms, to_ms)
    start = start_column(key_columns)
    writes: list[Row] = []
    for key, row in recomputed.rows.items():
        if not from_ms <= window_start_ms(row, start) < to_ms:
            continue
        if not row["final"]:
            changes.open_skipped += 1
            continue
        old = existing.get(key)
        if old is None:
            changes.new += 1
        elif any(old[c] != v for c, v in row.items() if c != "version"):
            changes.changed += 1
        writes.append({**row, "version": (epoch << EPOCH_SHIFT) | row["version"]})
    gone = [old["_key_hash"] for key, old in existing.items() if key not in recomputed.rows]
    if gone and write:
        client.command(
            f"ALTER TABLE {target} DELETE WHERE cityHash64({', '.join(key_columns)}) "
            "IN {gone:Array(UInt64)} SETTINGS mutations_sync = 2",
            parameters={"gone": gone},
        )
    changes.removed = len(gone)
    if writes and write:
        columns = list(writes[0])
        client.insert(target, [[row[c] for c in columns] for row in writes], column_names=columns)
    changes.written = len(writes)
    return changes


def _rows_in_range(
    client: Client, target: str, key_columns: list[str], from_ms: int, to_ms: int
) -> dict[Key, Row]:
    """The table's rows of windows starting in [from_ms, to_ms), by key, each with the hash
    of its key as ClickHouse computes it (to delete it by)."""
    start = start_column(key_columns)
    result = client.query(
        f"SELECT *, cityHash64({', '.join(key_columns)}) AS _key_hash FROM {target} FINAL "
        f"WHERE toUnixTimestamp(toDateTime({start}, {{tz:String}})) >= {{lo:Int64}} "
        f"AND toUnixTimestamp(toDateTime({start}, {{tz:String}})) < {{hi:Int64}}",
        parameters={"tz": str(CITY_TZ), "lo": from_ms // 1000, "hi": -(-to_ms // 1000)},
    )
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    return {tuple(row[c] for c in key_columns): row for row in rows}


def key_columns(client: Client, database: str, table: str) -> list[str]:
    """The table's sorting key: what identifies a window row."""
    found = client.query(
        "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows
    return [column.strip() for column in found[0][0].split(",")]
