"""Which stored window rows a recomputation replaces (`vtops reprocess`), and replacing them.

A stored row is touched only when the recomputation knows its window whole and closed: a final
recomputed row that differs from it replaces it, and a stored window the recomputation closed
without any event (all of them late or invalid now) is deleted. A row equal to its
recomputation is not written again, so a run with unchanged code and settings writes nothing;
a window still open, in the store or in the recomputation, is left to the live worker.

Rows are compared by instant: the embedded store returns `DateTime` columns as naive UTC times
while recomputed rows carry the city's zone, and a server returns them in the column's zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from city.clock import HOUR_MS, MINUTE_MS, local_day_bounds
from sinks.base import Row
from streams.payments import CASHLESS_TABLE
from streams.traffic.flow import FLOW_TABLE

EPOCH_SHIFT = 40
# Where the window tables say when a window starts: a minute or an hour, or a city day.
START_COLUMNS = ("window_start", "day")
# How long the windows of the tables keyed by `window_start` are; a `day` is a city day.
_SPAN_MS = {FLOW_TABLE: MINUTE_MS, CASHLESS_TABLE: HOUR_MS}

Key = tuple[Any, ...]


@dataclass
class Recomputed:
    """The last row of every window a stream's fold produced, by the table's key, and the time
    every window ending at or before has closed on every partition (None: not known for all)."""

    table: str
    rows: dict[Key, Row] = field(default_factory=dict)
    closed_through_ms: int | None = None


@dataclass
class TableChanges:
    table: str
    written: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    open_skipped: int = 0


def start_column(key_columns: list[str]) -> str:
    """The key column that says when a window starts (contract section 7)."""
    return next(c for c in key_columns if c in START_COLUMNS)


def window_start_ms(row: Row, column: str, tz: ZoneInfo) -> int:
    """When the row's window starts; a day starts at midnight, city time (`tz`)."""
    value = row[column]
    if isinstance(value, datetime):
        return int(_instant(value).timestamp() * 1000)
    assert isinstance(value, date)
    return int(datetime(value.year, value.month, value.day, tzinfo=tz).timestamp() * 1000)


def window_end_ms(table: str, row: Row, column: str, tz: ZoneInfo) -> int:
    start = window_start_ms(row, column, tz)
    return local_day_bounds(start, tz)[2] if column == "day" else start + _SPAN_MS[table]


def _instant(value: datetime) -> datetime:
    # Only the embedded store returns naive times, and it returns them in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _as_instants(row: Row) -> Row:
    return {c: _instant(v) if isinstance(v, datetime) else v for c, v in row.items()}


def apply_changes(
    client: Client,
    database: str,
    recomputed: Recomputed,
    key_columns: list[str],
    from_ms: int,
    to_ms: int,
    tz: ZoneInfo,
    write: bool = True,
) -> TableChanges:
    """Write the final recomputed windows that start in [from_ms, to_ms) and differ from their
    stored rows with a new epoch, and delete the stored windows in range the recomputation
    closed without them; `write` False only counts. `tz` is the city profile's zone, where a
    day window starts and ends."""
    table = recomputed.table
    changes = TableChanges(table)
    target = f"{database}.{table}"
    existing = _rows_in_range(client, target, key_columns, from_ms, to_ms, tz)
    start = start_column(key_columns)
    writes: list[Row] = []
    for key, row in recomputed.rows.items():
        if not from_ms <= window_start_ms(row, start, tz) < to_ms:
            continue
        if not row["final"]:
            changes.open_skipped += 1
            continue
        old = existing.get(key)
        if old is None:
            changes.new += 1
        elif any(old[c] != v for c, v in row.items() if c != "version"):
            changes.changed += 1
        else:
            changes.unchanged += 1
            continue
        writes.append(row)
    closed = recomputed.closed_through_ms
    gone: list[int] = []
    for key, old in existing.items():
        if key in recomputed.rows:
            continue
        if closed is not None and window_end_ms(table, old, start, tz) <= closed:
            gone.append(old["_key_hash"])
        else:
            changes.open_skipped += 1
    if gone and write:
        client.command(
            f"ALTER TABLE {target} DELETE WHERE cityHash64({', '.join(key_columns)}) "
            "IN {gone:Array(UInt64)} SETTINGS mutations_sync = 2",
            parameters={"gone": gone},
        )
    changes.removed = len(gone)
    if writes and write:
        top = client.query(f"SELECT max(version) FROM {target}").result_rows[0][0] or 0
        epoch = (int(top) >> EPOCH_SHIFT) + 1
        columns = list(writes[0])
        client.insert(
            target,
            [
                [(epoch << EPOCH_SHIFT) | row[c] if c == "version" else row[c] for c in columns]
                for row in writes
            ],
            column_names=columns,
        )
    changes.written = len(writes)
    return changes


def _rows_in_range(
    client: Client, target: str, key_columns: list[str], from_ms: int, to_ms: int, tz: ZoneInfo
) -> dict[Key, Row]:
    """The table's rows of windows starting in [from_ms, to_ms), by key, times as instants,
    each with the hash of its key as ClickHouse computes it (to delete it by)."""
    start = start_column(key_columns)
    result = client.query(
        f"SELECT *, cityHash64({', '.join(key_columns)}) AS _key_hash FROM {target} FINAL "
        f"WHERE toUnixTimestamp(toDateTime({start}, {{tz:String}})) >= {{lo:Int64}} "
        f"AND toUnixTimestamp(toDateTime({start}, {{tz:String}})) < {{hi:Int64}}",
        parameters={"tz": tz.key, "lo": from_ms // 1000, "hi": -(-to_ms // 1000)},
    )
    rows = [
        _as_instants(dict(zip(result.column_names, row, strict=True))) for row in result.result_rows
    ]
    return {tuple(row[c] for c in key_columns): row for row in rows}


def key_columns(client: Client, database: str, table: str) -> list[str]:
    """The table's sorting key: what identifies a window row."""
    found = client.query(
        "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows
    return [column.strip() for column in found[0][0].split(",")]
