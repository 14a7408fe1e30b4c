"""Grafana provisioning as data: the datasource, the dashboards provider and the alert rules.

The same definitions feed the YAML files Grafana reads at start-up (`infra/grafana/
provisioning/`, written by `vtops dashboards build`) and the HTTP API payloads of
`vtops dashboards push`, so each alert's SQL lives here once and the tests execute it. The SQL
names its tables `{db}.<table>`: `alert_rules` gives the rules for one store's database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from dashboards.panels import DATASOURCE_TYPE, DATASOURCE_UID, JSON, Format, sql_target
from dashboards.pipeline import DLQ_SURGE_THRESHOLD, NO_CHECKPOINT_MINUTES
from sinks.clickhouse.placeholders import fill

FOLDER_TITLE: Final = "Vũng Tàu Operations"
FOLDER_UID: Final = "vtops-operations"
DATASOURCE_NAME: Final = "Vũng Tàu ClickHouse"
GRAFANA_USER: Final = "vtops_grafana"
PASSWORD_ENV: Final = "VTOPS_GRAFANA_CLICKHOUSE_PASSWORD"
# Where the compose file mounts dashboards/json inside the Grafana container.
DASHBOARDS_PATH: Final = "/var/lib/grafana/dashboards/vtops"
EXPRESSIONS: Final[JSON] = {"type": "__expr__", "uid": "__expr__"}


def open_traffic_alerts_sql(severity: str) -> str:
    """One row, so one Grafana alert instance, per open anomaly of `severity`: its string
    columns become the instance's labels, `ratio` (observed / expected) its value."""
    return f"""
    SELECT alert_id, kind, camera_id AS camera, ward, severity, ratio
    FROM {{db}}.traffic_alerts_merged
    WHERE status = 'open' AND severity = '{severity}'
    """


# The rule's relative time range (5 minutes) is what $__timeFilter covers.
DLQ_SURGE_SQL: Final = """
    SELECT source_topic, count() AS dlq_messages
    FROM {db}.dlq_events FINAL
    WHERE $__timeFilter(received_at)
    GROUP BY source_topic
"""

# The age of the newest `pipeline_progress` row, whoever wrote it: this works when every
# worker is dead, which is when it matters. No row in a week (or ever) reads as very old.
NO_CHECKPOINT_SQL: Final = """
    SELECT dateDiff('second', max(recorded_at), $__toTime) AS seconds_since_checkpoint
    FROM {db}.pipeline_progress
    WHERE recorded_at > $__toTime - INTERVAL 7 DAY AND recorded_at <= $__toTime
"""


@dataclass(frozen=True)
class AlertRule:
    """One rule: a table query (one alert instance per label row), reduced, thresholded."""

    uid: str
    title: str
    group: str
    sql: str
    above: float
    severity: str
    summary: str
    description: str
    window_s: int = 600
    pending: str = "0s"
    labels: dict[str, str] = field(default_factory=dict)
    # What Grafana does when the query returns nothing: "OK", or "Alerting" for a rule whose
    # silence is itself the problem.
    no_data: str = "OK"

    def data(self) -> list[JSON]:
        query = sql_target(self.sql, Format.TABLE, "A")
        reduce = {
            "datasource": EXPRESSIONS,
            "refId": "B",
            "type": "reduce",
            "expression": "A",
            "reducer": "last",
            "settings": {"mode": "dropNN"},
        }
        threshold = {
            "datasource": EXPRESSIONS,
            "refId": "C",
            "type": "threshold",
            "expression": "B",
            "conditions": [{"evaluator": {"type": "gt", "params": [self.above]}}],
        }
        return [
            {
                "refId": "A",
                "datasourceUid": DATASOURCE_UID,
                "queryType": "",
                "relativeTimeRange": {"from": self.window_s, "to": 0},
                "model": query,
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "queryType": "",
                "relativeTimeRange": {"from": 0, "to": 0},
                "model": reduce,
            },
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "queryType": "",
                "relativeTimeRange": {"from": 0, "to": 0},
                "model": threshold,
            },
        ]

    def common(self) -> JSON:
        return {
            "uid": self.uid,
            "title": self.title,
            "condition": "C",
            "data": self.data(),
            "noDataState": self.no_data,
            "execErrState": "Error",
            "for": self.pending,
            # Go templates: file provisioning leaves annotations uninterpolated.
            "annotations": {"summary": self.summary, "description": self.description},
            "labels": {"service": "vtops", "severity": self.severity, **self.labels},
            "isPaused": False,
        }


TRAFFIC_GROUP: Final = "vtops-traffic"
PIPELINE_GROUP: Final = "vtops-pipeline"
GROUP_INTERVAL_S: Final = 60

ALERT_RULES: Final[tuple[AlertRule, ...]] = (
    AlertRule(
        uid="vtops-traffic-critical",
        title="Critical traffic anomaly open",
        group=TRAFFIC_GROUP,
        sql=open_traffic_alerts_sql("critical"),
        above=-1,  # every open alert fires, whatever its ratio
        severity="critical",
        labels={"team": "traffic"},
        summary="{{ $labels.kind }} at camera {{ $labels.camera }} ({{ $labels.ward }})",
        description="Observed / expected = {{ $values.B }}. See the Traffic operations "
        "dashboard, panel Open alerts, for the evidence; the alert resolves itself when the "
        "detector closes it.",
    ),
    AlertRule(
        uid="vtops-traffic-warning",
        title="Traffic anomaly warning persists",
        group=TRAFFIC_GROUP,
        sql=open_traffic_alerts_sql("warning"),
        above=-1,
        severity="warning",
        pending="5m",
        labels={"team": "traffic"},
        summary="{{ $labels.kind }} at camera {{ $labels.camera }} ({{ $labels.ward }}) "
        "for 5 minutes",
        description="Observed / expected = {{ $values.B }}. Warnings that stay open for five "
        "minutes deserve a look at the map.",
    ),
    AlertRule(
        uid="vtops-dlq-surge",
        title="Dead-letter surge",
        group=PIPELINE_GROUP,
        sql=DLQ_SURGE_SQL,
        above=DLQ_SURGE_THRESHOLD,
        severity="warning",
        window_s=300,
        labels={"team": "platform"},
        summary="{{ $values.B }} messages from {{ $labels.source_topic }} dead-lettered in 5 min",
        description=f"More than {DLQ_SURGE_THRESHOLD} invalid messages in five minutes: a "
        "producer is sending a broken schema. See Pipeline health, panel DLQ reasons.",
    ),
    AlertRule(
        uid="vtops-no-checkpoint",
        title=f"No checkpoint for {NO_CHECKPOINT_MINUTES} minutes",
        group=PIPELINE_GROUP,
        sql=NO_CHECKPOINT_SQL,
        above=NO_CHECKPOINT_MINUTES * 60,
        severity="critical",
        no_data="Alerting",
        labels={"team": "platform"},
        summary="No pipeline checkpoint for {{ $values.B }} s",
        description="No worker has written a pipeline_progress row for "
        f"{NO_CHECKPOINT_MINUTES} minutes: the worker is dead, stalled or stuck on its sinks, "
        "or no input arrives at all. Check `vtops kafka status`, the worker's /healthz and "
        "logs, and Pipeline health, panel Partitions by last checkpoint.",
    ),
)


def alert_rules(database: str, timezone: str) -> tuple[AlertRule, ...]:
    """ALERT_RULES reading the store `database` of a city in `timezone`."""
    return tuple(replace(rule, sql=fill(rule.sql, database, timezone)) for rule in ALERT_RULES)


def alert_rules_file(rules: Sequence[AlertRule]) -> JSON:
    """`provisioning/alerting/vtops-alerts.yaml`: unified alerting, apiVersion 1."""
    groups: dict[str, list[JSON]] = {}
    for rule in rules:
        groups.setdefault(rule.group, []).append(rule.common())
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": name,
                "folder": FOLDER_TITLE,
                "interval": f"{GROUP_INTERVAL_S}s",
                "rules": rules,
            }
            for name, rules in groups.items()
        ],
    }


# Where notifications go: the operations center's webhook and the traffic team's mailbox,
# from the environment of the Grafana container (file provisioning expands $VARS).
CONTACT_POINT: Final = "vtops-operations"


def receivers(webhook_url: str | None, emails: str | None) -> list[JSON]:
    """The contact point's receivers, one per target given: the file passes Grafana's
    `$VARS` (it expands them), `vtops dashboards push` the values of its own settings."""
    found: list[JSON] = []
    if webhook_url:
        found.append(
            {
                "uid": "vtops-webhook",
                "type": "webhook",
                "settings": {"url": webhook_url, "httpMethod": "POST"},
            }
        )
    if emails:
        found.append(
            {
                "uid": "vtops-email",
                "type": "email",
                "settings": {"addresses": emails, "singleEmail": True},
            }
        )
    return found


def notification_policy() -> JSON:
    """The policy tree: alerts are grouped as Alertmanager does by default (wait 30 s, then
    every 5 min, repeat after 4 h), per kind and ward so that a city-wide event is one
    notification per kind; traffic alerts go to the operations center, pipeline alerts to the
    platform team. It is Grafana's whole tree: it replaces the default policy."""
    return {
        "receiver": CONTACT_POINT,
        "group_by": ["alertname", "kind", "ward"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [
            {
                "receiver": CONTACT_POINT,
                "object_matchers": [["team", "=", team]],
                "group_by": group_by,
            }
            for team, group_by in (
                ("traffic", ["alertname", "kind", "ward"]),
                ("platform", ["alertname", "source_topic"]),
            )
        ],
    }


def notifications_file() -> JSON:
    """`provisioning/alerting/vtops-notifications.yaml`: the contact point and the policy tree,
    the targets from Grafana's environment."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": receivers("$VTOPS_ALERT_WEBHOOK_URL", "$VTOPS_ALERT_EMAILS"),
            }
        ],
        "policies": [{"orgId": 1, **notification_policy()}],
    }


def alert_rule_payload(rule: AlertRule, folder_uid: str = FOLDER_UID) -> JSON:
    """The body of POST/PUT /api/v1/provisioning/alert-rules."""
    return {**rule.common(), "folderUID": folder_uid, "ruleGroup": rule.group, "orgID": 1}


def _json_data(host: str, port: int, database: str) -> JSON:
    return {
        "host": host,
        "port": port,
        "protocol": "http",
        "secure": False,
        "username": GRAFANA_USER,
        "defaultDatabase": database,
        "dialTimeout": "10",
        "queryTimeout": "60",
    }


def datasource_file(database: str, host: str = "clickhouse", port: int = 8123) -> JSON:
    """`provisioning/datasources/clickhouse.yaml`; Grafana reads the password from the env."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": DATASOURCE_NAME,
                "type": DATASOURCE_TYPE,
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "isDefault": True,
                "editable": False,
                "jsonData": _json_data(host, port, database),
                "secureJsonData": {"password": f"${PASSWORD_ENV}"},
            }
        ],
    }


def datasource_payload(host: str, port: int, password: str | None, database: str) -> JSON:
    """The body of POST /api/datasources (or PUT by uid); no password keeps the stored one."""
    payload: dict[str, Any] = {
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "uid": DATASOURCE_UID,
        "access": "proxy",
        "jsonData": _json_data(host, port, database),
    }
    if password is not None:
        payload["secureJsonData"] = {"password": password}
    return payload


def dashboards_provider_file(path: str = DASHBOARDS_PATH) -> JSON:
    """`provisioning/dashboards/vtops.yaml`: a file provider over the mounted JSON folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "vtops",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }
