"""Publish the operations screens to a running Grafana through its HTTP API, idempotently.

Order: the folder "Vũng Tàu Operations", the ClickHouse datasource (uid `vtops-clickhouse`),
the dashboards (overwrite), then the alert rules through the alerting provisioning API and
their groups' evaluation interval, then where their notifications go: the contact point
`vtops-operations` (one receiver per target) and the notification policy tree that routes to
it (rules pushed without it land on Grafana's default policy and its empty email receiver).
Each object has a fixed uid, so a second push updates what the first created. Every failure
becomes a GrafanaPushError naming the step and Grafana's answer; the token is never part of a
message.

Rules created here carry the API provenance: a Grafana that also file-provisions the same
rules (the compose setup) refuses to update them, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.exceptions import GrafanaPushError
from dashboards.panels import JSON
from dashboards.provisioning import (
    CONTACT_POINT,
    FOLDER_TITLE,
    FOLDER_UID,
    GROUP_INTERVAL_S,
    AlertRule,
    alert_rule_payload,
    datasource_payload,
    notification_policy,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class PushReport:
    """What each object became: created, updated or unchanged."""

    folder: str = ""
    datasource: str = ""
    dashboards: dict[str, str] = field(default_factory=dict)
    alert_rules: dict[str, str] = field(default_factory=dict)
    # Per receiver uid; empty when no target was given, and then the policy is left alone.
    contact_points: dict[str, str] = field(default_factory=dict)
    notification_policy: str = "not pushed: no VTOPS_ALERT_WEBHOOK_URL or VTOPS_ALERT_EMAILS"


def _answer(error: GrafanaException) -> str:
    response = error.response
    if isinstance(response, Mapping) and response.get("message"):
        text = str(response["message"])
    else:
        text = str(error.message or type(error).__name__)
    return text[:300]


def _failure(step: str, error: Exception) -> GrafanaPushError:
    if isinstance(error, GrafanaException):
        status = f"HTTP {error.status_code}" if error.status_code else "no HTTP answer"
        return GrafanaPushError(f"{step}: Grafana answered {status}: {_answer(error)}")
    # Connection refused, DNS, TLS: niquests' errors are OSErrors.
    return GrafanaPushError(f"{step}: cannot reach Grafana ({type(error).__name__})")


def _step(step: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except (GrafanaException, OSError) as error:
        raise _failure(step, error) from None


def _lookup(step: str, call: Callable[[], Any]) -> Any | None:
    """The object, or None when Grafana answers 404."""
    try:
        return call()
    except GrafanaClientError as error:
        if error.status_code == 404:
            return None
        raise _failure(step, error) from None
    except (GrafanaException, OSError) as error:
        raise _failure(step, error) from None


class GrafanaPublisher:
    """The push steps against one Grafana (`GrafanaApi.from_url(url, credential=token)`)."""

    def __init__(self, api: GrafanaApi) -> None:
        # grafana-client's element methods are untyped: its answers are plain JSON.
        self._api: Any = api

    def ensure_folder(self) -> str:
        found = _lookup("read folder", lambda: self._api.folder.get_folder(FOLDER_UID))
        if found is None:
            _step(
                "create folder",
                lambda: self._api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID),
            )
            return "created"
        if found.get("title") != FOLDER_TITLE:
            _step(
                "rename folder",
                lambda: self._api.folder.update_folder(
                    FOLDER_UID, title=FOLDER_TITLE, overwrite=True
                ),
            )
            return "updated"
        return "unchanged"

    def upsert_datasource(self, payload: JSON) -> str:
        uid = payload["uid"]
        found = _lookup("read datasource", lambda: self._api.datasource.get_datasource_by_uid(uid))
        if found is None:
            _step("create datasource", lambda: self._api.datasource.create_datasource(payload))
            return "created"
        _step(
            "update datasource", lambda: self._api.datasource.update_datasource_by_uid(uid, payload)
        )
        return "updated"

    def upsert_dashboard(self, board: JSON) -> str:
        body = {
            "dashboard": {**board, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "vtops dashboards push",
        }
        _step(f"dashboard {board['uid']}", lambda: self._api.dashboard.update_dashboard(body))
        return "updated"

    def upsert_alert_rule(self, rule: AlertRule) -> str:
        payload = alert_rule_payload(rule)
        provisioning = self._api.alertingprovisioning
        found = _lookup(f"read alert rule {rule.uid}", lambda: provisioning.get_alertrule(rule.uid))
        if found is None:
            _step(f"create alert rule {rule.uid}", lambda: provisioning.create_alertrule(payload))
            return "created"
        _step(
            f"update alert rule {rule.uid}",
            lambda: provisioning.update_alertrule(rule.uid, payload),
        )
        return "updated"

    def upsert_contact_point(self, receiver: JSON) -> str:
        """One receiver of the contact point (Grafana's API calls each a contact point; those
        of one name are one contact point in its UI)."""
        provisioning = self._api.alertingprovisioning
        body = {**receiver, "name": CONTACT_POINT, "disableResolveMessage": False}
        uid = receiver["uid"]
        present = _step(
            "read contact points", lambda: provisioning.get_contactpoints(name=CONTACT_POINT)
        )
        if any(point.get("uid") == uid for point in present):
            _step(
                f"update contact point {uid}",
                lambda: provisioning.update_contactpoint(uid, body),
            )
            return "updated"
        _step(f"create contact point {uid}", lambda: provisioning.create_contactpoint(body))
        return "created"

    def set_notification_policy(self, policy: JSON) -> str:
        provisioning = self._api.alertingprovisioning
        current = _step(
            "read notification policies", lambda: provisioning.get_notification_policy_tree()
        )
        if all(current.get(key) == value for key, value in policy.items()):
            return "unchanged"
        _step(
            "set notification policies",
            lambda: provisioning.set_notification_policy_tree(policy),
        )
        return "updated"

    def set_group_interval(self, group: str, seconds: int) -> None:
        provisioning = self._api.alertingprovisioning
        current = _step(
            f"read rule group {group}", lambda: provisioning.get_rule_group(FOLDER_UID, group)
        )
        if current.get("interval") != seconds:
            body = {**current, "interval": seconds}
            _step(
                f"set interval of rule group {group}",
                lambda: provisioning.update_rule_group(FOLDER_UID, group, body),
            )


def push_all(
    api: GrafanaApi,
    dashboards: Sequence[JSON],
    *,
    clickhouse_host: str,
    clickhouse_port: int,
    clickhouse_password: str | None,
    database: str,
    rules: Sequence[AlertRule],
    receivers: Sequence[JSON],
) -> PushReport:
    """Publish `dashboards` and `rules`, both built for the store `database`, and route the
    rules' notifications to `receivers` (provisioning.receivers); none: leave routing alone."""
    publisher = GrafanaPublisher(api)
    report = PushReport()
    report.folder = publisher.ensure_folder()
    report.datasource = publisher.upsert_datasource(
        datasource_payload(clickhouse_host, clickhouse_port, clickhouse_password, database)
    )
    for board in dashboards:
        report.dashboards[board["uid"]] = publisher.upsert_dashboard(board)
    for rule in rules:
        report.alert_rules[rule.uid] = publisher.upsert_alert_rule(rule)
    for group in dict.fromkeys(rule.group for rule in rules):
        publisher.set_group_interval(group, GROUP_INTERVAL_S)
    if receivers:
        for receiver in receivers:
            report.contact_points[receiver["uid"]] = publisher.upsert_contact_point(receiver)
        report.notification_policy = publisher.set_notification_policy(notification_policy())
    logger.info(
        "grafana push folder=%s datasource=%s dashboards=%d rules=%d contact_points=%d",
        report.folder,
        report.datasource,
        len(report.dashboards),
        len(report.alert_rules),
        len(report.contact_points),
    )
    return report
