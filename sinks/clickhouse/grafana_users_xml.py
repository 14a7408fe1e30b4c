"""The read-only Grafana user as a ClickHouse users-config file, for the local server.

The local server (`vtops clickhouse start`, chDB's clickhouse-local) keeps users only in its
config files: CREATE USER and GRANT find no storage to write to there. So the same role
grants as the SQL path (grafana_access.role_grants) are declared in XML. One difference, from
clickhouse-local: it refuses a profile that lets `max_execution_time` change in readonly = 1
mode (that needs a server-only setting), and Grafana's plugin sets it on every query; so the
profile is readonly = 2 (reads and SET, no writes, no DDL) with `readonly` fixed and
`max_execution_time` capped at MAX_EXECUTION_S.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from sinks.clickhouse.grafana_access import (
    GRAFANA_PROFILE,
    GRAFANA_ROLE,
    GRAFANA_USER,
    MAX_EXECUTION_S,
    check_password_hash,
    plain_identifier,
    role_grants,
)


def grafana_users_xml(
    database: str, hashed_password: str, visible_columns: Mapping[str, Sequence[str]]
) -> str:
    """users.d/vtops_grafana.xml: the profile, the role with its grants, the user."""
    db = plain_identifier(database)
    check_password_hash(hashed_password)
    queries = "\n".join(
        f"        <query>GRANT {escape(privilege)}</query>"
        for _, privilege in role_grants(db, visible_columns)
    )
    return f"""<clickhouse>
  <profiles>
    <{GRAFANA_PROFILE}>
      <readonly>2</readonly>
      <max_execution_time>{MAX_EXECUTION_S}</max_execution_time>
      <constraints>
        <readonly><const/></readonly>
        <max_execution_time><max>{MAX_EXECUTION_S}</max></max_execution_time>
      </constraints>
    </{GRAFANA_PROFILE}>
  </profiles>
  <roles>
    <{GRAFANA_ROLE}>
      <grants>
{queries}
      </grants>
    </{GRAFANA_ROLE}>
  </roles>
  <users>
    <{GRAFANA_USER}>
      <password_sha256_hex>{hashed_password}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>{GRAFANA_PROFILE}</profile>
      <quota>default</quota>
      <default_database>{db}</default_database>
      <grants><query>GRANT {GRAFANA_ROLE}</query></grants>
    </{GRAFANA_USER}>
  </users>
</clickhouse>
"""
