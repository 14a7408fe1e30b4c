"""The ClickHouse schema as numbered migrations, and the runner that brings a store up to date.

`migrate()` runs at every worker start and from `vtops migrate`; `vtops query` never runs it
(Grafana's read-only user must be able to query). A store records the migrations applied to
it in `<database>.schema_migrations`, one row per version. The runner is our own because it
has to serve the embedded engine (chDB) and a server alike through clickhouse-connect.

Upsert tables are ReplacingMergeTree(version) ordered by their key; record tables are
ReplacingMergeTree ordered by the record's identity, so a retried or replayed insert of the
same record collapses under FINAL instead of counting twice.

To change the schema, append a Migration to MIGRATIONS, numbered one past the last; never
edit one that was released, since stores have recorded it as applied:
- every statement must be safe to run twice (`CREATE TABLE IF NOT EXISTS`,
  `ALTER TABLE ... ADD COLUMN IF NOT EXISTS ...`, `DROP ... IF EXISTS`): ClickHouse has no
  transactional DDL, so a run stopped between a statement and its version row repeats it;
- write `{db}.` before every table name and `{tz}` for the city's zone in a DateTime type;
  the runner puts the database and the city profile's zone there (placeholders.py);
- a new column needs a DEFAULT (or a Nullable type) for the rows already there, and the code
  that writes the table must give it in every row (sinks/clickhouse/table.py inserts every
  column of the table); a new table the pipeline writes goes into TABLES as well;
The zone is fixed when a store is made: a DateTime column's zone decides its days and hours
for every reader (dashboards, indicators, baselines), and ClickHouse cannot change it in place
without rewriting the history it files under each day. So `migrate` refuses a city profile
whose zone is not the store's (StoreZoneError); another city, or a corrected zone, takes a new
database (VTOPS_CLICKHOUSE_DATABASE).

- tests/sinks/test_migrations.py checks every migration from an empty store and from the
  version before it, and that TABLES names every table the migrations make.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.migration_lock import migration_lock
from sinks.clickhouse.placeholders import TIMEZONE, check_database, fill
from sinks.exceptions import SinkError

log = logging.getLogger(__name__)

TZ = f"'{TIMEZONE}'"
VERSION_TABLE: Final = "schema_migrations"


# What an operator reads (dashboards, alert rules, the report, the demo): every camera's alert
# as written, and one alert per city-wide event. Each input partition judges its own cameras,
# so a city-wide outage or shift is found by several (streams/traffic/anomaly/watch.py), each
# finding a row of its own with the partition in its id; here the findings of a kind that
# overlap in time, or follow within 15 minutes (an alert's reopening window), are one alert:
# named by its first finding, open while any is, with the partitions' evidence summed. A
# function of the rows alone, so as exact under replays, several workers and crashes as they
# are (the ids settle once every partition has written its finding).
MERGED_ALERTS: Final = "traffic_alerts_merged"
_ALERT_COLUMNS: Final = (
    "alert_id, camera_id, ward, kind, severity, opened_at, resolved_at, observed, expected, "
    "score, status, version, alert_key, state, first_anomalous_at, updated_at, ratio, reopens, "
    "flapping, rule_version, baseline_version"
)
MERGED_ALERTS_SQL: Final = f"""
    SELECT {_ALERT_COLUMNS} FROM {{db}}.traffic_alerts FINAL WHERE camera_id != '*'
    UNION ALL
    SELECT m_id AS alert_id, '*' AS camera_id, '*' AS ward, kind, m_severity AS severity,
           m_opened AS opened_at, if(m_open, NULL, m_resolved) AS resolved_at,
           m_observed AS observed, m_expected AS expected, m_score AS score,
           if(m_open, 'open', 'resolved') AS status, m_version AS version, m_key AS alert_key,
           m_state AS state, m_first AS first_anomalous_at, m_updated AS updated_at,
           m_observed / greatest(m_expected, 1e-9) AS ratio, m_reopens AS reopens,
           m_flapping AS flapping, m_rule AS rule_version, m_baseline AS baseline_version
    FROM (
        SELECT kind, argMin(alert_id, (first_anomalous_at, alert_id)) AS m_id,
               argMax(severity, indexOf(['info', 'warning', 'critical'], severity))
                 AS m_severity,
               min(opened_at) AS m_opened, countIf(status = 'open') > 0 AS m_open,
               max(resolved_at) AS m_resolved, sum(observed) AS m_observed,
               sum(expected) AS m_expected, avg(score) AS m_score, sum(version) AS m_version,
               any(alert_key) AS m_key, argMax(state, (updated_at, alert_id)) AS m_state,
               min(first_anomalous_at) AS m_first, max(updated_at) AS m_updated,
               sum(reopens) AS m_reopens, max(flapping) AS m_flapping,
               max(rule_version) AS m_rule, max(baseline_version) AS m_baseline
        FROM (
            SELECT *, sum(begins) OVER (PARTITION BY kind ORDER BY first_anomalous_at, alert_id
                                        ROWS UNBOUNDED PRECEDING) AS event
            FROM (
                SELECT *, toUInt64(toUnixTimestamp(first_anomalous_at) > coalesce(max(until)
                           OVER (PARTITION BY kind ORDER BY first_anomalous_at, alert_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))
                           AS begins
                FROM (
                    SELECT *, toUnixTimestamp(coalesce(resolved_at, toDateTime(4294967295)))
                              + 15 * 60 AS until
                    FROM {{db}}.traffic_alerts FINAL WHERE camera_id = '*'
                )
            )
        )
        GROUP BY kind, event
    )"""


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]


class SchemaVersionError(SinkError):
    """The store's schema is newer than this release knows: an older vtops must not write it."""


class StoreZoneError(SinkError):
    """The store keeps its times in another zone than the city profile's."""


def _create(table: str, body: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {{db}}.{table} ({body}"


# Version 1 is the schema every release before versioned migrations created, unchanged: on
# such a store (tables, no version table) its statements create nothing and it is recorded.
_V1_TABLES: Final[dict[str, str]] = {
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

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "the stream outputs, dead letters, progress and stream state",
        tuple(_create(table, body) for table, body in _V1_TABLES.items()),
    ),
    Migration(
        2,
        "dead letters keep the original key, headers and timestamp, and their encodings",
        (
            # NULL on the rows from before: what they did not record is unknown.
            """ALTER TABLE {db}.dlq_events
            ADD COLUMN IF NOT EXISTS payload_encoding LowCardinality(Nullable(String)),
            ADD COLUMN IF NOT EXISTS payload_bytes Nullable(UInt64),
            ADD COLUMN IF NOT EXISTS payload_sha256 Nullable(String),
            ADD COLUMN IF NOT EXISTS key Nullable(String),
            ADD COLUMN IF NOT EXISTS key_encoding LowCardinality(Nullable(String)),
            ADD COLUMN IF NOT EXISTS headers Array(Tuple(String, String)),
            ADD COLUMN IF NOT EXISTS timestamp Nullable(Int64)""",
        ),
    ),
    Migration(
        3,
        "traffic alerts carry their lifecycle and evidence; traffic baselines",
        (
            # Alerts were never written before this version: the defaults only fill the type.
            f"""ALTER TABLE {{db}}.traffic_alerts
            ADD COLUMN IF NOT EXISTS alert_key String DEFAULT concat(kind, '|', camera_id),
            ADD COLUMN IF NOT EXISTS state LowCardinality(String) DEFAULT status,
            ADD COLUMN IF NOT EXISTS first_anomalous_at DateTime({TZ}) DEFAULT opened_at,
            ADD COLUMN IF NOT EXISTS updated_at DateTime({TZ}) DEFAULT opened_at,
            ADD COLUMN IF NOT EXISTS ratio Float64 DEFAULT 0,
            ADD COLUMN IF NOT EXISTS reopens UInt16 DEFAULT 0,
            ADD COLUMN IF NOT EXISTS flapping UInt8 DEFAULT 0,
            ADD COLUMN IF NOT EXISTS rule_version UInt16 DEFAULT 0,
            ADD COLUMN IF NOT EXISTS baseline_version UInt64 DEFAULT 0""",
            # Per camera, kind of day and 15-minute slot (streams/traffic/anomaly/baselines.py).
            """CREATE TABLE IF NOT EXISTS {db}.traffic_baselines (
                camera_id LowCardinality(String), day_type LowCardinality(String), slot UInt8,
                vehicles_median Float64, vehicles_mad Float64,
                speed_median Nullable(Float64), speed_mad Float64, violation_rate Float64,
                motorbike_share Float64, car_share Float64, bus_share Float64,
                truck_share Float64, bicycle_share Float64, other_share Float64,
                samples UInt32, source LowCardinality(String), version UInt64
            ) ENGINE = ReplacingMergeTree(version) ORDER BY (camera_id, day_type, slot)""",
        ),
    ),
    Migration(
        4,
        "dead letters say when the key and headers were too long to keep",
        ("ALTER TABLE {db}.dlq_events ADD COLUMN IF NOT EXISTS origin_bytes Nullable(UInt64)",),
    ),
    Migration(
        5,
        "dead letters keep a null header value as null (issue 16)",
        (
            "ALTER TABLE {db}.dlq_events "
            "MODIFY COLUMN headers Array(Tuple(String, Nullable(String)))",
        ),
    ),
    Migration(
        6,
        "window aggregates that valid input cannot overflow (issue 16)",
        # A window counts at most one event per offset of its partition, so fewer than 2^63:
        # every count fits UInt64. A tally adds at most 10^7 per method and 4 * 10^13 VND
        # cashless (schemas/payments.py), so a window's sums stay below 2^87 and 2^109: UInt128.
        (
            """ALTER TABLE {db}.traffic_flow_1m
            MODIFY COLUMN vehicles UInt64, MODIFY COLUMN motorbike UInt64,
            MODIFY COLUMN car UInt64, MODIFY COLUMN bus UInt64, MODIFY COLUMN truck UInt64,
            MODIFY COLUMN bicycle UInt64, MODIFY COLUMN other UInt64,
            MODIFY COLUMN violations UInt64""",
            """ALTER TABLE {db}.payments_cashless_1h
            MODIFY COLUMN reports UInt64, MODIFY COLUMN terminals UInt64,
            MODIFY COLUMN cash UInt128, MODIFY COLUMN vietqr UInt128, MODIFY COLUMN card UInt128,
            MODIFY COLUMN ewallet UInt128, MODIFY COLUMN bank_transfer UInt128,
            MODIFY COLUMN cash_amount_vnd UInt128, MODIFY COLUMN cashless_amount_vnd UInt128""",
            """ALTER TABLE {db}.portal_kpis_1d
            MODIFY COLUMN submitted UInt64, MODIFY COLUMN submitted_online UInt64,
            MODIFY COLUMN submitted_full_online UInt64, MODIFY COLUMN submitted_vneid_l2 UInt64,
            MODIFY COLUMN paid_online UInt64, MODIFY COLUMN resolved UInt64,
            MODIFY COLUMN resolved_signed UInt64, MODIFY COLUMN resolved_on_time UInt64,
            MODIFY COLUMN resolved_no_due UInt64, MODIFY COLUMN rejected UInt64""",
        ),
    ),
    Migration(
        7,
        "one traffic alert per city-wide event: traffic_alerts_merged (issue 18)",
        (f"CREATE VIEW IF NOT EXISTS {{db}}.{MERGED_ALERTS} AS {MERGED_ALERTS_SQL}",),
    ),
    Migration(
        8,
        "traffic baselines kept per version, each effective from an event time (issue 18)",
        (
            # Every version stays, so a replay judges each minute by the version effective
            # then (streams/traffic/anomaly/baselines.py); the latest rows of the old table
            # become a version effective since always.
            f"""CREATE TABLE IF NOT EXISTS {{db}}.traffic_baseline_versions (
                camera_id LowCardinality(String), day_type LowCardinality(String), slot UInt8,
                vehicles_median Float64, vehicles_mad Float64,
                speed_median Nullable(Float64), speed_mad Float64, violation_rate Float64,
                motorbike_share Float64, car_share Float64, bus_share Float64,
                truck_share Float64, bicycle_share Float64, other_share Float64,
                samples UInt32, source LowCardinality(String), version UInt64,
                effective_from DateTime64(3, {TZ})
            ) ENGINE = ReplacingMergeTree ORDER BY (version, camera_id, day_type, slot)""",
            # Run twice, the copies collapse under FINAL (same version and slot).
            """INSERT INTO {db}.traffic_baseline_versions
            SELECT *, toDateTime64(0, 3) FROM {db}.traffic_baselines FINAL""",
        ),
    ),
    Migration(
        9,
        "the single-version traffic baselines table, copied by version 8, dropped",
        ("DROP TABLE IF EXISTS {db}.traffic_baselines",),
    ),
    Migration(
        10,
        "alerts an operator confirmed as incidents, left out of the baselines (issue 18)",
        (
            f"""CREATE TABLE IF NOT EXISTS {{db}}.traffic_incidents (
                alert_id String, confirmed_at DateTime64(3, {TZ}), note String
            ) ENGINE = ReplacingMergeTree ORDER BY alert_id""",
        ),
    ),
)
LATEST: Final = MIGRATIONS[-1].version

# The tables the pipeline writes, one sink each (streams/app.py).
TABLES: Final[tuple[str, ...]] = (
    "traffic_flow_1m",
    "traffic_violations",
    "camera_status",
    "payments_cashless_1h",
    "portal_kpis_1d",
    "traffic_alerts",
    "dlq_events",
    "pipeline_progress",
    "stream_state",
)

# Tables the worker only reads; `vtops baselines refresh` writes them.
READ_TABLES: Final[tuple[str, ...]] = ("traffic_baseline_versions",)
# Tables operators write: `vtops alerts confirm`.
OPERATOR_TABLES: Final[tuple[str, ...]] = ("traffic_incidents",)
# Views over the tables, for the readers.
VIEWS: Final[tuple[str, ...]] = (MERGED_ALERTS,)


def _version_table(database: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {database}.{VERSION_TABLE} (
        version UInt32, summary String, applied_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree ORDER BY version"""


def schema_version(client: Client, database: str) -> int:
    """The last migration applied to `database`; 0 for a store without a version table
    (empty, or made before versioned migrations: version 1 then creates nothing)."""
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": VERSION_TABLE},
    ).result_rows[0][0]
    if not exists:
        return 0
    rows = client.query(f"SELECT max(version) FROM {database}.{VERSION_TABLE}").result_rows
    return int(rows[0][0])


# The column whose type carries the store's zone; every version has it.
_ZONE_COLUMN: Final = ("traffic_flow_1m", "window_start")
_QUOTED = re.compile(r"'([^']*)'")


def store_timezone(client: Client, database: str) -> str | None:
    """The zone the store's times are kept in; None for a store without tables yet."""
    table, column = _ZONE_COLUMN
    rows = client.query(
        "SELECT type FROM system.columns "
        "WHERE database = {db:String} AND table = {t:String} AND name = {c:String}",
        parameters={"db": database, "t": table, "c": column},
    ).result_rows
    if not rows:
        return None
    zone = _QUOTED.search(str(rows[0][0]))
    # DateTime without a zone: the server's, which no release of vtops made.
    return zone.group(1) if zone else ""


def checked_version(client: Client, database: str, *, timezone: str) -> int:
    """The store's schema version, once the store is known to be one this release may migrate
    for a city in `timezone`: StoreZoneError or SchemaVersionError otherwise. Two quick queries:
    a worker asks them before it starts, and migrates while it does (streams/app.py)."""
    check_database(database)
    current = schema_version(client, database)
    kept_in = store_timezone(client, database)
    if kept_in is not None and kept_in != timezone:
        raise StoreZoneError(
            f"the ClickHouse database {database} keeps its times in {kept_in or 'no zone'}, "
            f"the city profile's time zone is {timezone}: a store's zone cannot change; set "
            "VTOPS_CLICKHOUSE_DATABASE to a new database for this city (or use the profile "
            "the store was made for)"
        )
    if current > LATEST:
        raise SchemaVersionError(
            f"the ClickHouse database {database} is at schema version {current}, newer than "
            f"this vtops knows ({LATEST}): upgrade vtops"
        )
    return current


def migrate(
    client: Client, database: str, *, timezone: str, target: int = LATEST
) -> list[Migration]:
    """Apply, in order, every migration past the store's version up to `target`; return
    those applied (none when the store is up to date, so it is safe on every start).
    `timezone` is the city profile's; a store made for another zone is refused."""
    current = checked_version(client, database, timezone=timezone)
    if current >= target:
        return []  # every worker start, without taking the lock
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    with migration_lock(client, database):
        # Another worker may have migrated while this one waited for the lock.
        current = schema_version(client, database)
        client.command(_version_table(database))
        applied = []
        for migration in MIGRATIONS:
            if not current < migration.version <= target:
                continue
            for statement in migration.statements:
                client.command(fill(statement, database, timezone))
            client.insert(
                f"{database}.{VERSION_TABLE}",
                [[migration.version, migration.summary, datetime.now(UTC)]],
                column_names=["version", "summary", "applied_at"],
            )
            log.info("schema migration applied database=%s version=%d", database, migration.version)
            applied.append(migration)
    return applied
