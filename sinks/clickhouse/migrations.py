"""The ClickHouse schema (contract section 7 plus the pipeline's own tables), applied idempotently.

Upsert tables are ReplacingMergeTree(version) ordered by their key; record tables are
ReplacingMergeTree ordered by the record's identity, so a retried or replayed insert of the
same record collapses under FINAL instead of counting twice.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

TZ = "'Asia/Ho_Chi_Minh'"

TABLES: dict[str, str] = {
    "traffic_flow_1m": f"""
        camera_id LowCardinality(String), ward LowCardinality(String),
        window_start DateTime({TZ}),
        vehicles UInt32, motorbike UInt32, car UInt32, bus UInt32, truck UInt32,
        bicycle UInt32, other UInt32, pcu Float64, avg_speed_kmh Nullable(Float64),
        violations UInt32, final UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    PARTITION BY toYYYYMM(window_start) ORDER BY (camera_id, window_start)""",
    "traffic_violations": f"""
        event_id String, camera_id LowCardinality(String), ward LowCardinality(String),
        ts DateTime64(3, {TZ}), violation_type LowCardinality(String),
        vehicle_class LowCardinality(String), plate Nullable(String), speed_kmh Nullable(Float64)
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(ts) ORDER BY (camera_id, ts, event_id)""",
    "camera_status": f"""
        camera_id LowCardinality(String), ward LowCardinality(String),
        ts DateTime64(3, {TZ}), status LowCardinality(String), event_id String
    ) ENGINE = ReplacingMergeTree ORDER BY (camera_id, ts, event_id)""",
    "payments_cashless_1h": f"""
        ward LowCardinality(String), category LowCardinality(String),
        window_start DateTime({TZ}), reports UInt32, terminals UInt32,
        cash UInt64, vietqr UInt64, card UInt64, ewallet UInt64, bank_transfer UInt64,
        cash_amount_vnd UInt64, cashless_amount_vnd UInt64, cashless_share Float64,
        final UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    PARTITION BY toYYYYMM(window_start) ORDER BY (ward, category, window_start)""",
    "portal_kpis_1d": """
        day Date, agency LowCardinality(String), procedure_code LowCardinality(String),
        submitted UInt32, submitted_online UInt32, submitted_full_online UInt32,
        submitted_vneid_l2 UInt32, paid_online UInt32, resolved UInt32, resolved_signed UInt32,
        resolved_on_time UInt32, resolved_no_due UInt32, rejected UInt32,
        final UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    PARTITION BY toYYYYMM(day) ORDER BY (day, agency, procedure_code)""",
    "traffic_alerts": f"""
        alert_id String, camera_id LowCardinality(String), ward LowCardinality(String),
        kind LowCardinality(String), severity LowCardinality(String),
        opened_at DateTime({TZ}), resolved_at Nullable(DateTime({TZ})),
        observed Float64, expected Float64, score Float64,
        status LowCardinality(String), version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY alert_id""",
    "dlq_events": f"""
        source_topic LowCardinality(String), partition UInt32, offset UInt64,
        received_at DateTime64(3, {TZ}), error String, payload String
    ) ENGINE = ReplacingMergeTree ORDER BY (source_topic, partition, offset)""",
    # One row per checkpoint and partition: cumulative counters, so a replayed checkpoint
    # writes the same numbers again and the latest row per partition is the truth.
    "pipeline_progress": f"""
        source_topic LowCardinality(String), partition UInt32, offset Int64,
        recorded_at DateTime64(3, {TZ}), stream_time Nullable(DateTime64(3, {TZ})),
        events UInt64, accepted UInt64, duplicates UInt64, late UInt64, invalid UInt64,
        open_windows UInt32, lag Int64, sink_ms Float64
    ) ENGINE = ReplacingMergeTree ORDER BY (source_topic, partition, offset)""",
    # The workers' window state and source offsets, written in one insert per checkpoint so
    # that a restarted worker resumes from a consistent cut (see streams/checkpoint.py).
    "stream_state": """
        source_topic String, partition UInt32, key String, checkpoint UInt64,
        deleted UInt8, state String
    ) ENGINE = ReplacingMergeTree(checkpoint, deleted) ORDER BY (source_topic, partition, key)""",
}


def migrate(client: Client, database: str) -> None:
    """Create the database and every table that is missing; safe to run on every start."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    for table, body in TABLES.items():
        client.command(f"CREATE TABLE IF NOT EXISTS {database}.{table} ({body}")
