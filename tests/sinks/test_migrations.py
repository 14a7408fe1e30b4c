"""The numbered migrations on the real embedded ClickHouse: from an empty store, from every
version before the last, from a store the releases before versioned migrations made, twice."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from city.profile import load_city_profile
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import (
    LATEST,
    MIGRATIONS,
    OPERATOR_TABLES,
    READ_TABLES,
    TABLES,
    VERSION_TABLE,
    VIEWS,
    SchemaVersionError,
    StoreZoneError,
    migrate,
    schema_version,
)
from sinks.clickhouse.placeholders import fill
from sinks.exceptions import SinkError
from sinks.settings import StorageSettings

PREVIOUS_RELEASE = Path(__file__).with_name("previous_release.sql")
CITY_TZ = load_city_profile().timezone
Schema = dict[str, tuple[str, str, str, tuple[tuple[str, str, str], ...]]]

_databases = count()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # chDB runs one embedded engine per process: one store, a database per case.
    opened = connect(StorageSettings(data_dir=tmp_path_factory.mktemp("migrations")))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def database() -> str:
    return f"migrations_{next(_databases)}"


def schema(client: Client, database: str) -> Schema:
    """Per table: engine, sorting key, partition key and every column's name, type, default."""
    tables = client.query(
        "SELECT name, engine, sorting_key, partition_key FROM system.tables "
        "WHERE database = {db:String} AND name != {v:String}",
        parameters={"db": database, "v": VERSION_TABLE},
    ).result_rows
    columns = client.query(
        "SELECT table, name, type, default_expression FROM system.columns "
        "WHERE database = {db:String} ORDER BY table, position",
        parameters={"db": database},
    ).result_rows
    return {
        name: (
            engine,
            sorting,
            partition,
            tuple((c[1], c[2], c[3]) for c in columns if c[0] == name),
        )
        for name, engine, sorting, partition in tables
    }


def run_script(client: Client, database: str, script: str) -> None:
    for statement in script.split(";"):
        lines = [line for line in statement.splitlines() if not line.startswith("--")]
        if "".join(lines).strip():
            client.command("\n".join(lines).replace("{db}", database))


def recorded(client: Client, database: str) -> list[int]:
    rows = client.query(f"SELECT version FROM {database}.{VERSION_TABLE} FINAL ORDER BY version")
    return [int(row[0]) for row in rows.result_rows]


@pytest.fixture(scope="module")
def latest_schema(client: Client) -> Schema:
    migrate(client, "migrations_reference", timezone=CITY_TZ)
    return schema(client, "migrations_reference")


def test_an_empty_store_gets_every_migration_and_every_table(
    client: Client, database: str, latest_schema: Schema
) -> None:
    assert schema_version(client, database) == 0
    applied = migrate(client, database, timezone=CITY_TZ)
    assert [m.version for m in applied] == list(range(1, LATEST + 1))
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))
    assert schema_version(client, database) == LATEST
    assert recorded(client, database) == list(range(1, LATEST + 1))
    # Every table the pipeline writes exists, and every table made is written by a sink, read
    # by the worker or a view for the readers.
    assert set(schema(client, database)) == (
        set(TABLES) | set(READ_TABLES) | set(OPERATOR_TABLES) | set(VIEWS)
    )
    assert schema(client, database) == latest_schema


@pytest.mark.parametrize("previous", range(LATEST))
def test_a_store_at_each_earlier_version_reaches_the_same_schema(
    client: Client, database: str, latest_schema: Schema, previous: int
) -> None:
    migrate(client, database, timezone=CITY_TZ, target=previous)
    assert schema_version(client, database) == previous
    applied = migrate(client, database, timezone=CITY_TZ)
    assert [m.version for m in applied] == list(range(previous + 1, LATEST + 1))
    assert schema(client, database) == latest_schema


@pytest.mark.parametrize("stopped", range(1, LATEST + 1))
def test_a_migration_stopped_before_its_version_row_runs_again(
    client: Client, database: str, latest_schema: Schema, stopped: int
) -> None:
    """No transactional DDL: a run stopped between its statements and the version row repeats
    them on the next start, so each must be safe to run twice."""
    migrate(client, database, timezone=CITY_TZ, target=stopped - 1)
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    for statement in MIGRATIONS[stopped - 1].statements:
        client.command(fill(statement, database, CITY_TZ))
    assert schema_version(client, database) == stopped - 1
    migrate(client, database, timezone=CITY_TZ)
    assert schema(client, database) == latest_schema


def test_a_store_made_before_versioned_migrations_is_version_1_and_keeps_its_rows(
    client: Client, database: str, latest_schema: Schema
) -> None:
    run_script(client, database, PREVIOUS_RELEASE.read_text())
    client.command(
        f"INSERT INTO {database}.dlq_events VALUES "
        "('vtops.camera.events', 0, 7, now64(3), 'speed_kmh: must be >= 0', '{}')"
    )
    assert schema_version(client, database) == 0
    applied = migrate(client, database, timezone=CITY_TZ)
    assert [m.version for m in applied] == list(range(1, LATEST + 1))
    assert schema(client, database) == latest_schema
    rows = client.query(f"SELECT offset, error FROM {database}.dlq_events").result_rows
    assert rows == [(7, "speed_kmh: must be >= 0")]


def test_running_again_changes_nothing(
    client: Client, database: str, latest_schema: Schema
) -> None:
    migrate(client, database, timezone=CITY_TZ)
    assert migrate(client, database, timezone=CITY_TZ) == []
    assert recorded(client, database) == list(range(1, LATEST + 1))
    assert schema(client, database) == latest_schema


def test_a_store_newer_than_this_release_is_refused(client: Client, database: str) -> None:
    migrate(client, database, timezone=CITY_TZ)
    client.command(
        f"INSERT INTO {database}.{VERSION_TABLE} VALUES ({LATEST + 1}, 'from the future', now64(3))"
    )
    with pytest.raises(SchemaVersionError, match=f"version {LATEST + 1}, newer than"):
        migrate(client, database, timezone=CITY_TZ)


def test_a_database_name_that_is_not_an_identifier_is_refused(client: Client) -> None:
    with pytest.raises(SinkError, match="VTOPS_CLICKHOUSE_DATABASE"):
        migrate(client, "vtops; DROP TABLE x", timezone=CITY_TZ)


def _zones(client: Client, database: str) -> set[str]:
    """The zone of every DateTime column of the store's tables."""
    types = {column[1] for table in schema(client, database).values() for column in table[3]}
    return {t.split("'")[1] for t in types if "DateTime" in t}


def test_a_store_keeps_the_city_profiles_zone_and_refuses_another(
    client: Client, database: str
) -> None:
    # Made at version 1 and brought up to date: the later columns get the same zone.
    migrate(client, database, timezone="Europe/Lisbon", target=1)
    migrate(client, database, timezone="Europe/Lisbon")
    assert _zones(client, database) == {"Europe/Lisbon"}
    with pytest.raises(StoreZoneError, match=r"keeps its times in Europe/Lisbon.*Asia/Ho_Chi_Minh"):
        migrate(client, database, timezone="Asia/Ho_Chi_Minh")
    assert _zones(client, database) == {"Europe/Lisbon"}
    with pytest.raises(SinkError, match="not an IANA time zone name"):
        migrate(client, f"{database}_new", timezone="UTC') ENGINE = Memory --")
