"""Grafana's ClickHouse user reads what the dashboards need, and never plates or state.

chDB (the embedded engine) has no writable user storage: CREATE ROLE/USER and GRANT fail
there with ACCESS_DENIED or UNKNOWN_ROLE. So the statements are checked as text, parsed by
the real engine (EXPLAIN AST), run in order against a recording client, and the embedded
engine's refusal is checked to leak neither the password nor its hash. On the session's
ClickHouse server `vtops dashboards prepare-store` creates the user for real, and the test
logs in as it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect import get_client
from clickhouse_connect.driver.exceptions import DatabaseError
from pydantic import SecretStr

from city.profile import load_city_profile
from dashboards.build import DEFAULT_DATABASE
from dashboards.provisioning import alert_rules
from sinks.clickhouse.grafana_access import (
    GRAFANA_ROLE,
    GRAFANA_USER,
    HIDDEN_COLUMNS,
    NEVER_READABLE,
    READABLE_TABLES,
    GrafanaAccessError,
    grant_grafana_access,
    grant_statements,
    password_hash,
)
from tests.clickhouse_server import local_data_dir, own_database
from tests.dashboards.conftest import Store
from tests.dashboards.queries import boards
from tests.pipeline import VTOPS

PASSWORD = "correct horse battery staple"
TABLE = re.compile(r"\bvtops\.(\w+)")


def _all_sql() -> list[str]:
    texts = [
        t["rawSql"] for b in boards().values() for p in b["panels"] for t in p.get("targets", [])
    ]
    texts += [
        v["query"]
        for b in boards().values()
        for v in b["templating"]["list"]
        if v["type"] == "query"
    ]
    rules = alert_rules(DEFAULT_DATABASE, load_city_profile().timezone)
    texts += [r.data()[0]["model"]["rawSql"] for r in rules]
    return texts


def _columns(store: Store, table: str) -> list[str]:
    result = store.client.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
        "ORDER BY position",
        parameters={"db": store.database, "t": table},
    )
    return [str(r[0]) for r in result.result_rows]


def _statements(store: Store) -> list[tuple[str, str]]:
    visible = {table: _columns(store, table) for table in HIDDEN_COLUMNS}
    return grant_statements(store.database, password_hash(PASSWORD), visible)


def test_grants_cover_every_table_the_dashboards_and_alerts_read() -> None:
    read = {m for text in _all_sql() for m in TABLE.findall(text)}
    granted = set(READABLE_TABLES) | set(HIDDEN_COLUMNS)
    assert read <= granted, f"tables read but not granted: {read - granted}"
    assert not read & set(NEVER_READABLE)


def test_no_dashboard_query_reads_a_hidden_column() -> None:
    for text in _all_sql():
        for column in ("plate", "payload"):
            assert not re.search(rf"\b{column}\b", text), text
        assert "SELECT *" not in text.replace("SELECT * FROM vtops.traffic_alerts", "")


def test_violations_are_granted_column_by_column_without_plate(populated_store: Store) -> None:
    statements = dict(_statements(populated_store))
    grant = statements["grant traffic_violations columns"]
    table = f"{populated_store.database}.traffic_violations"
    match = re.fullmatch(rf"GRANT SELECT\((.+)\) ON {table} TO (\w+)", grant)
    assert match and match.group(2) == GRAFANA_ROLE
    columns = match.group(1).split(", ")
    assert "plate" not in columns
    assert set(columns) == set(_columns(populated_store, "traffic_violations")) - {"plate"}
    dlq = statements["grant dlq_events columns"]
    assert "error" in dlq and "timestamp" in dlq
    for carried in ("payload", "key", "headers"):
        assert carried not in dlq


def test_state_and_writes_are_never_granted(populated_store: Store) -> None:
    text = "\n".join(s for _, s in _statements(populated_store))
    assert "stream_state" not in text
    for grant in re.findall(r"GRANT (\w+)", text):
        assert grant in ("SELECT", GRAFANA_ROLE)
    assert "readonly = 1" in text


def test_statements_parse_in_clickhouse(populated_store: Store) -> None:
    for _step, statement in _statements(populated_store):
        populated_store.client.query(f"EXPLAIN AST {statement}")  # raises on a syntax error


def test_the_password_never_appears_only_its_sha256(populated_store: Store) -> None:
    text = "\n".join(s for _, s in _statements(populated_store))
    assert PASSWORD not in text
    assert hashlib.sha256(PASSWORD.encode()).hexdigest() in text


class RecordingClient:
    """Answers `system.columns` like the store and records every command."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commands: list[str] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self.store.client.query(sql, parameters=parameters)

    def command(self, sql: str) -> None:
        self.commands.append(sql)


def test_grant_runs_every_step_in_order(populated_store: Store) -> None:
    client = RecordingClient(populated_store)
    grant_grafana_access(client, populated_store.database, SecretStr(PASSWORD))  # type: ignore[arg-type]
    assert client.commands == [s for _, s in _statements(populated_store)]
    assert client.commands[-1] == f"SET DEFAULT ROLE {GRAFANA_ROLE} TO {GRAFANA_USER}"
    # Running it again issues the same idempotent statements.
    again = RecordingClient(populated_store)
    grant_grafana_access(again, populated_store.database, PASSWORD)  # type: ignore[arg-type]
    assert again.commands == client.commands


def test_embedded_engine_refuses_and_says_where_without_secrets(populated_store: Store) -> None:
    with pytest.raises(GrafanaAccessError) as caught:
        grant_grafana_access(populated_store.client, populated_store.database, SecretStr(PASSWORD))
    message = str(caught.value)
    assert "step 'profile'" in message and "ACCESS_DENIED" in message
    assert PASSWORD not in message and password_hash(PASSWORD) not in message


@pytest.mark.parametrize("database", ["vtops; DROP TABLE x", "", "1abc"])
def test_database_name_must_be_an_identifier(database: str) -> None:
    with pytest.raises(GrafanaAccessError, match="identifier"):
        grant_statements(database, password_hash(PASSWORD), {t: ["a"] for t in HIDDEN_COLUMNS})


def test_empty_password_is_refused() -> None:
    with pytest.raises(GrafanaAccessError, match="empty"):
        password_hash(SecretStr(""))


@pytest.mark.integration
def test_on_a_server_grafana_reads_the_boards_tables_and_never_plates_messages_or_state(
    clickhouse_server: str, tmp_path: Path
) -> None:
    with own_database(clickhouse_server, "grafana") as database:
        env = {
            **os.environ,
            "VTOPS_DATA_DIR": str(local_data_dir(tmp_path)),
            "VTOPS_CLICKHOUSE_URL": clickhouse_server,
            "VTOPS_CLICKHOUSE_DATABASE": database,
            "VTOPS_GRAFANA_CLICKHOUSE_PASSWORD": PASSWORD,
        }
        prepared = subprocess.run(
            [VTOPS, "dashboards", "prepare-store"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert prepared.returncode == 0, prepared.stderr
        assert f"read-only user {GRAFANA_USER}" in prepared.stdout
        address = clickhouse_server.rpartition("@")[2].split(":")
        grafana = get_client(
            host=address[0], port=int(address[1]), username=GRAFANA_USER, password=PASSWORD
        )
        try:
            _reads_and_refusals(grafana, database)
        finally:
            grafana.close()


def _reads_and_refusals(grafana: Any, db: str) -> None:
    for table in READABLE_TABLES:
        grafana.query(f"SELECT count() FROM {db}.{table}")
    assert grafana.query(f"SELECT count() FROM {db}.cameras").result_rows[0][0] > 0
    grafana.query(f"SELECT camera_id, violation_type FROM {db}.traffic_violations")
    grafana.query(f"SELECT source_topic, error FROM {db}.dlq_events")
    # The plugin's driver sets this on every query: it must be allowed.
    grafana.query("SELECT 1", settings={"max_execution_time": 30})
    refused = [
        f"SELECT plate FROM {db}.traffic_violations",
        f"SELECT * FROM {db}.traffic_violations",
        *(f"SELECT {c} FROM {db}.dlq_events" for c in HIDDEN_COLUMNS["dlq_events"]),
        f"SELECT * FROM {db}.stream_state",
        f"SELECT count() FROM {db}.stream_state",
        f"INSERT INTO {db}.wards (ward) VALUES ('x')",
        f"DROP TABLE {db}.cameras",
    ]
    for statement in refused:
        with pytest.raises(DatabaseError, match=r"ACCESS_DENIED|READONLY|Code: (497|164)"):
            grafana.query(statement)
