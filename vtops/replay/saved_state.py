"""The worker's saved stream state (`stream_state`, streams/engine/state_store.py) as the
replay tools read and replace it. The saved state, not the group's offsets, says where the
worker resumes each partition."""

from __future__ import annotations

import orjson
from clickhouse_connect.driver.client import Client

from streams.engine.state_store import COLUMNS, META_KEY, TABLE, StateRow


def saved_offsets(client: Client, database: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) → the last offset folded into its saved state."""
    result = client.query(
        f"SELECT source_topic, partition, state FROM {database}.{TABLE} FINAL "
        "WHERE key = {meta:String} AND source_topic IN {topics:Array(String)}",
        parameters={"meta": META_KEY, "topics": topics},
    )
    return {
        (topic, int(partition)): int(orjson.loads(state)["offset"])
        for topic, partition, state in result.result_rows
    }


def replace_state(client: Client, database: str, topics: list[str], rows: list[StateRow]) -> None:
    """Drop every saved entry of `topics`, then insert `rows`: their versions are their own
    offsets plus one, as the worker writes them, so that its next checkpoints win over them.

    Not atomic: killed in between, the topics have no state, and the worker rebuilds it from
    the beginning of the retained data, which is exact too, only longer.
    """
    client.command(
        f"ALTER TABLE {database}.{TABLE} DELETE WHERE source_topic IN {{topics:Array(String)}} "
        "SETTINGS mutations_sync = 2",
        parameters={"topics": topics},
    )
    if rows:
        client.insert(f"{database}.{TABLE}", rows, column_names=COLUMNS)


def has_saved_state(client: Client, database: str) -> bool:
    """False for a store no worker has written yet (no `stream_state` table)."""
    rows = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": TABLE},
    ).result_rows
    return bool(rows[0][0])
