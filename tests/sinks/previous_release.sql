-- The schema the releases before versioned migrations created (sinks/clickhouse/migrations.py's
-- migrate() at commit 6dae6e2), kept verbatim: a store they made must be recognised as version 1.
CREATE DATABASE IF NOT EXISTS {db};
CREATE TABLE IF NOT EXISTS {db}.traffic_flow_1m (
    camera_id LowCardinality(String), ward LowCardinality(String),
    window_start DateTime('Asia/Ho_Chi_Minh'),
    vehicles UInt32, motorbike UInt32, car UInt32, bus UInt32, truck UInt32,
    bicycle UInt32, other UInt32, pcu Float64, avg_speed_kmh Nullable(Float64),
    violations UInt32, final UInt8, version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start) ORDER BY (camera_id, window_start);
CREATE TABLE IF NOT EXISTS {db}.traffic_violations (
    event_id String, camera_id LowCardinality(String), ward LowCardinality(String),
    ts DateTime64(3, 'Asia/Ho_Chi_Minh'), violation_type LowCardinality(String),
    vehicle_class LowCardinality(String), plate Nullable(String), speed_kmh Nullable(Float64)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts) ORDER BY (camera_id, ts, event_id);
CREATE TABLE IF NOT EXISTS {db}.camera_status (
    camera_id LowCardinality(String), ward LowCardinality(String),
    ts DateTime64(3, 'Asia/Ho_Chi_Minh'), status LowCardinality(String), event_id String
) ENGINE = ReplacingMergeTree ORDER BY (camera_id, ts, event_id);
CREATE TABLE IF NOT EXISTS {db}.payments_cashless_1h (
    ward LowCardinality(String), category LowCardinality(String),
    window_start DateTime('Asia/Ho_Chi_Minh'), reports UInt32, terminals UInt32,
    cash UInt64, vietqr UInt64, card UInt64, ewallet UInt64, bank_transfer UInt64,
    cash_amount_vnd UInt64, cashless_amount_vnd UInt64, cashless_share Float64,
    final UInt8, version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start) ORDER BY (ward, category, window_start);
CREATE TABLE IF NOT EXISTS {db}.portal_kpis_1d (
    day Date, agency LowCardinality(String), procedure_code LowCardinality(String),
    submitted UInt32, submitted_online UInt32, submitted_full_online UInt32,
    submitted_vneid_l2 UInt32, paid_online UInt32, resolved UInt32, resolved_signed UInt32,
    resolved_on_time UInt32, resolved_no_due UInt32, rejected UInt32,
    final UInt8, version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day) ORDER BY (day, agency, procedure_code);
CREATE TABLE IF NOT EXISTS {db}.traffic_alerts (
    alert_id String, camera_id LowCardinality(String), ward LowCardinality(String),
    kind LowCardinality(String), severity LowCardinality(String),
    opened_at DateTime('Asia/Ho_Chi_Minh'), resolved_at Nullable(DateTime('Asia/Ho_Chi_Minh')),
    observed Float64, expected Float64, score Float64,
    status LowCardinality(String), version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY alert_id;
CREATE TABLE IF NOT EXISTS {db}.dlq_events (
    source_topic LowCardinality(String), partition UInt32, offset UInt64,
    received_at DateTime64(3, 'Asia/Ho_Chi_Minh'), error String, payload String
) ENGINE = ReplacingMergeTree ORDER BY (source_topic, partition, offset);
CREATE TABLE IF NOT EXISTS {db}.pipeline_progress (
    source_topic LowCardinality(String), partition UInt32, offset Int64,
    recorded_at DateTime64(3, 'Asia/Ho_Chi_Minh'), stream_time Nullable(DateTime64(3, 'Asia/Ho_Chi_Minh')),
    events UInt64, accepted UInt64, duplicates UInt64, late UInt64, invalid UInt64,
    open_windows UInt32, lag Int64, sink_ms Float64
) ENGINE = ReplacingMergeTree ORDER BY (source_topic, partition, offset);
CREATE TABLE IF NOT EXISTS {db}.stream_state (
    source_topic String, partition UInt32, key String, checkpoint UInt64,
    deleted UInt8, state String
) ENGINE = ReplacingMergeTree(checkpoint, deleted) ORDER BY (source_topic, partition, key);
