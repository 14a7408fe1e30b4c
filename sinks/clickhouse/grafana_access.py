"""Least privilege for the dashboards: the read-only ClickHouse user Grafana logs in with.

`vtops_grafana` gets its rights only through the role `vtops_grafana_reader`: SELECT on the
tables the dashboards and alert rules read, every column of `traffic_violations` except
`plate`, every column of `dlq_events` except those of the rejected message itself (its
payload, key and headers, their encodings and lengths: a camera event's may hold a plate),
and nothing of `stream_state` (the workers' internal state). A settings profile keeps it
read-only (readonly = 1) while letting the plugin's driver set `max_execution_time`.

The password never travels: the user is identified by its SHA-256 hash, and errors name the
step and ClickHouse's error code, never the statement. The statements need a server with
access management (CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1 in the compose file); the embedded
engine (chDB) has no writable user storage and refuses them, and so does the local server
(`vtops clickhouse start`), which gets the same grants in its users config instead
(grafana_users_xml.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Final

from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from sinks.exceptions import SinkError

logger = logging.getLogger(__name__)

GRAFANA_USER: Final = "vtops_grafana"
GRAFANA_ROLE: Final = "vtops_grafana_reader"
GRAFANA_PROFILE: Final = "vtops_grafana_readonly"
MAX_EXECUTION_S: Final = 60

# Read whole: the stream outputs, the pipeline's health tables and the city dimensions
# (dashboards/dimensions.py). A test checks this covers every table the dashboards query.
READABLE_TABLES: Final[tuple[str, ...]] = (
    "traffic_flow_1m",
    "camera_status",
    "traffic_alerts",
    "traffic_alerts_merged",
    "payments_cashless_1h",
    "portal_kpis_1d",
    "pipeline_progress",
    "cameras",
    "wards",
    "agencies",
    "procedures",
)
# Read all columns but these.
HIDDEN_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "traffic_violations": ("plate",),
    "dlq_events": (
        "payload",
        "payload_encoding",
        "payload_bytes",
        "payload_sha256",
        "key",
        "key_encoding",
        "headers",
        "origin_bytes",
    ),
}
NEVER_READABLE: Final[tuple[str, ...]] = ("stream_state",)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ERROR_CODE = re.compile(r"Code: (\d+)|\(([A-Z_]{3,})\)")


class GrafanaAccessError(SinkError):
    """The read-only Grafana user or its grants could not be set up."""


def plain_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise GrafanaAccessError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def password_hash(password: SecretStr | str) -> str:
    plain = password.get_secret_value() if isinstance(password, SecretStr) else password
    if not plain:
        raise GrafanaAccessError("the Grafana ClickHouse password is empty")
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def role_grants(
    database: str, visible_columns: Mapping[str, Sequence[str]]
) -> list[tuple[str, str]]:
    """(step, privilege) pairs of the role, e.g. `SELECT ON vtops.cameras`: the one list both
    the SQL grants and the local server's users config (grafana_users_xml.py) are made of.

    `visible_columns` maps each table of HIDDEN_COLUMNS to the columns Grafana may read.
    """
    db = plain_identifier(database)
    privileges = [(f"grant {table}", f"SELECT ON {db}.{table}") for table in READABLE_TABLES]
    for table, hidden in HIDDEN_COLUMNS.items():
        columns = [plain_identifier(c) for c in visible_columns[table] if c not in hidden]
        if not columns:
            raise GrafanaAccessError(f"no readable column left in {db}.{table}")
        privileges.append(
            (f"grant {table} columns", f"SELECT({', '.join(columns)}) ON {db}.{table}")
        )
    return privileges


def check_password_hash(hashed_password: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{64}", hashed_password):
        raise GrafanaAccessError("the password hash must be 64 hex digits (SHA-256)")


def grant_statements(
    database: str, hashed_password: str, visible_columns: Mapping[str, Sequence[str]]
) -> list[tuple[str, str]]:
    """(step, statement) pairs that create or update the user, role and grants idempotently."""
    db = plain_identifier(database)
    check_password_hash(hashed_password)
    identity = (
        f"IDENTIFIED WITH sha256_hash BY '{hashed_password}' "
        f"DEFAULT DATABASE {db} SETTINGS PROFILE '{GRAFANA_PROFILE}'"
    )
    profile = (
        f"SETTINGS readonly = 1, max_execution_time = {MAX_EXECUTION_S} CHANGEABLE_IN_READONLY"
    )
    steps = [
        ("profile", f"CREATE SETTINGS PROFILE IF NOT EXISTS {GRAFANA_PROFILE} {profile}"),
        ("profile settings", f"ALTER SETTINGS PROFILE {GRAFANA_PROFILE} {profile}"),
        ("role", f"CREATE ROLE IF NOT EXISTS {GRAFANA_ROLE}"),
        # Start from nothing, so a table dropped from the list loses its grant.
        ("role reset", f"REVOKE ALL ON *.* FROM {GRAFANA_ROLE}"),
    ]
    steps += [
        (step, f"GRANT {privilege} TO {GRAFANA_ROLE}")
        for step, privilege in role_grants(database, visible_columns)
    ]
    steps += [
        ("user", f"CREATE USER IF NOT EXISTS {GRAFANA_USER} {identity}"),
        ("user password", f"ALTER USER {GRAFANA_USER} {identity}"),
        ("user reset", f"REVOKE ALL ON *.* FROM {GRAFANA_USER}"),
        ("user role", f"GRANT {GRAFANA_ROLE} TO {GRAFANA_USER}"),
        ("default role", f"SET DEFAULT ROLE {GRAFANA_ROLE} TO {GRAFANA_USER}"),
    ]
    return steps


def _columns(client: Client, database: str, table: str) -> list[str]:
    result = client.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
        "ORDER BY position",
        parameters={"db": database, "t": table},
    )
    names = [str(row[0]) for row in result.result_rows]
    if not names:
        raise GrafanaAccessError(f"table {database}.{table} does not exist: migrate first")
    return names


def _describe(error: Exception) -> str:
    """ClickHouse's code and name for an error, without the statement it quotes."""
    found = [a or b for a, b in _ERROR_CODE.findall(str(error))]
    return f"{type(error).__name__} {' '.join(found)}".strip()


def visible_columns(client: Client, database: str) -> dict[str, list[str]]:
    """Every column of each table of HIDDEN_COLUMNS (role_grants leaves the hidden out)."""
    return {table: _columns(client, database, table) for table in HIDDEN_COLUMNS}


def grant_grafana_access(client: Client, database: str, password: SecretStr | str) -> None:
    """Create or update `vtops_grafana` and its read-only grants on `database`.

    Raises GrafanaAccessError naming the failed step (e.g. on the embedded engine, which
    has no user storage); the password and its hash never appear in a message or a log.
    """
    visible = visible_columns(client, database)
    for step, statement in grant_statements(database, password_hash(password), visible):
        try:
            client.command(statement)
        except Exception as error:
            raise GrafanaAccessError(
                f"granting Grafana read-only access failed at step '{step}': {_describe(error)}"
            ) from None
        logger.info("grafana access step=%s user=%s", step, GRAFANA_USER)
