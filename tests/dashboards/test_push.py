"""`vtops dashboards push` against an in-memory Grafana: idempotent, and clear when refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grafana_client.client import GrafanaClientError, GrafanaUnauthorizedError
from typer.testing import CliRunner

from city.profile import load_city_profile
from dashboards.build import DEFAULT_DATABASE
from dashboards.exceptions import GrafanaPushError
from dashboards.provisioning import (
    ALERT_RULES,
    CONTACT_POINT,
    FOLDER_TITLE,
    FOLDER_UID,
    alert_rules,
    notification_policy,
    receivers,
)
from dashboards.push import push_all
from tests.dashboards.queries import boards
from vtops.cli.main import app
from vtops.settings import get_settings

TOKEN = "glsa_secret-token-never-printed"


def _missing(what: str) -> GrafanaClientError:
    error: GrafanaClientError = GrafanaClientError(  # type: ignore[no-untyped-call]
        404, {"message": f"{what} not found"}, "Client Error 404"
    )
    return error


class FakeGrafana:
    """The parts of GrafanaApi that push uses, keeping state like Grafana would."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.groups: dict[tuple[str, str], int] = {}
        self.contact_points: dict[str, dict[str, Any]] = {}
        # Grafana's own default: everything to its email receiver.
        self.policy: dict[str, Any] = {"receiver": "grafana-default-email"}
        self.folder = self.datasource = self.dashboard = self.alertingprovisioning = self

    # folders
    def get_folder(self, uid: str) -> dict[str, Any]:
        if uid not in self.folders:
            raise _missing("folder")
        return self.folders[uid]

    def create_folder(self, title: str, uid: str | None = None) -> None:
        assert uid is not None
        self.folders[uid] = {"uid": uid, "title": title}

    def update_folder(self, uid: str, title: str, overwrite: bool = False) -> None:
        self.folders[uid]["title"] = title

    # datasources
    def get_datasource_by_uid(self, uid: str) -> dict[str, Any]:
        if uid not in self.datasources:
            raise _missing("data source")
        return self.datasources[uid]

    def create_datasource(self, payload: dict[str, Any]) -> None:
        self.datasources[payload["uid"]] = payload

    def update_datasource_by_uid(self, uid: str, payload: dict[str, Any]) -> None:
        self.datasources[uid] = payload

    # dashboards
    def update_dashboard(self, body: dict[str, Any]) -> None:
        assert body["overwrite"] is True and body["folderUid"] in self.folders
        self.dashboards[body["dashboard"]["uid"]] = body["dashboard"]

    # alert rules
    def get_alertrule(self, uid: str) -> dict[str, Any]:
        if uid not in self.rules:
            raise _missing("alert rule")
        return self.rules[uid]

    def create_alertrule(self, payload: dict[str, Any]) -> None:
        self.rules[payload["uid"]] = payload
        self.groups.setdefault((payload["folderUID"], payload["ruleGroup"]), 0)

    def update_alertrule(self, uid: str, payload: dict[str, Any]) -> None:
        self.rules[uid] = payload

    def get_rule_group(self, folder_uid: str, group: str) -> dict[str, Any]:
        return {
            "title": group,
            "folderUid": folder_uid,
            "interval": self.groups[(folder_uid, group)],
        }

    def update_rule_group(self, folder_uid: str, group: str, body: dict[str, Any]) -> None:
        self.groups[(folder_uid, group)] = body["interval"]

    # notifications
    def get_contactpoints(self, name: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.contact_points.values() if name is None or p["name"] == name]

    def create_contactpoint(self, body: dict[str, Any]) -> None:
        assert body["uid"] not in self.contact_points
        self.contact_points[body["uid"]] = body

    def update_contactpoint(self, uid: str, body: dict[str, Any]) -> None:
        self.contact_points[uid] = body

    def get_notification_policy_tree(self) -> dict[str, Any]:
        return self.policy

    def set_notification_policy_tree(self, tree: dict[str, Any]) -> None:
        # Grafana refuses a tree whose receivers are not contact points.
        names = {p["name"] for p in self.contact_points.values()}
        assert {tree["receiver"]} | {r["receiver"] for r in tree["routes"]} <= names
        self.policy = tree


def _push(
    grafana: FakeGrafana, password: str | None = "pw", targets: list[dict[str, Any]] | None = None
) -> Any:
    api: Any = grafana  # duck-typed stand-in for GrafanaApi
    return push_all(
        api,
        list(boards().values()),
        clickhouse_host="clickhouse",
        clickhouse_port=8123,
        clickhouse_password=password,
        database=DEFAULT_DATABASE,
        rules=alert_rules(DEFAULT_DATABASE, load_city_profile().timezone),
        receivers=targets or [],
    )


def test_push_creates_everything_once_then_updates_in_place() -> None:
    grafana = FakeGrafana()
    first = _push(grafana)
    assert first.folder == "created" and first.datasource == "created"
    assert set(first.alert_rules.values()) == {"created"}
    assert grafana.folders == {FOLDER_UID: {"uid": FOLDER_UID, "title": FOLDER_TITLE}}
    assert set(grafana.dashboards) == set(boards())
    assert set(grafana.rules) == {r.uid for r in ALERT_RULES}
    assert set(grafana.groups.values()) == {60}
    source = grafana.datasources["vtops-clickhouse"]
    assert source["jsonData"]["host"] == "clickhouse" and source["jsonData"]["port"] == 8123
    assert source["secureJsonData"] == {"password": "pw"}

    second = _push(grafana, password=None)
    assert second.folder == "unchanged" and second.datasource == "updated"
    assert set(second.alert_rules.values()) == {"updated"}
    assert len(grafana.dashboards) == len(boards()) and len(grafana.rules) == len(ALERT_RULES)
    # Without a password the payload leaves the stored secret alone.
    assert "secureJsonData" not in grafana.datasources["vtops-clickhouse"]
    # No target: the routing is left as it was.
    assert grafana.contact_points == {} and second.contact_points == {}
    assert grafana.policy == {"receiver": "grafana-default-email"}


def test_push_routes_the_rules_to_the_contact_point() -> None:
    grafana = FakeGrafana()
    targets = receivers("https://hooks.example/vtops", "ops@example.vn;traffic@example.vn")
    first = _push(grafana, targets=targets)
    assert first.contact_points == {"vtops-webhook": "created", "vtops-email": "created"}
    assert first.notification_policy == "updated"
    webhook = grafana.contact_points["vtops-webhook"]
    assert webhook["name"] == CONTACT_POINT and webhook["type"] == "webhook"
    assert webhook["settings"]["url"] == "https://hooks.example/vtops"
    email = grafana.contact_points["vtops-email"]["settings"]
    assert email["addresses"] == "ops@example.vn;traffic@example.vn"
    assert grafana.policy == notification_policy()
    # Every rule carries a team label that a route of the tree matches.
    teams = {route["object_matchers"][0][2] for route in grafana.policy["routes"]}
    assert {rule.labels["team"] for rule in ALERT_RULES} <= teams

    second = _push(grafana, targets=targets)
    assert second.contact_points == {"vtops-webhook": "updated", "vtops-email": "updated"}
    assert second.notification_policy == "unchanged"
    assert len(grafana.contact_points) == 2


def test_a_refusal_names_the_step_and_the_answer() -> None:
    grafana = FakeGrafana()

    def refuse(payload: dict[str, Any]) -> None:
        raise GrafanaUnauthorizedError({"message": "invalid API key"})  # type: ignore[no-untyped-call]

    grafana.create_datasource = refuse  # type: ignore[method-assign]
    with pytest.raises(GrafanaPushError) as caught:
        _push(grafana)
    assert str(caught.value) == "create datasource: Grafana answered HTTP 401: invalid API key"


def test_an_unreachable_grafana_is_reported_as_such() -> None:
    grafana = FakeGrafana()

    def down(uid: str) -> None:
        raise ConnectionRefusedError("connection refused")

    grafana.get_folder = down  # type: ignore[method-assign,assignment]
    with pytest.raises(GrafanaPushError, match="read folder: cannot reach Grafana"):
        _push(grafana)


# The command line


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    for name in (
        "VTOPS_GRAFANA_URL",
        "VTOPS_GRAFANA_TOKEN",
        "VTOPS_CLICKHOUSE_URL",
        "VTOPS_GRAFANA_CLICKHOUSE_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_push_without_url_or_token_says_which_is_missing(
    cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli_env.invoke(app, ["dashboards", "push", "--no-store"])
    assert result.exit_code == 1 and "VTOPS_GRAFANA_URL is not set" in result.output
    monkeypatch.setenv("VTOPS_GRAFANA_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    result = cli_env.invoke(app, ["dashboards", "push", "--no-store"])
    assert result.exit_code == 1 and "VTOPS_GRAFANA_TOKEN is not set" in result.output


def test_push_to_an_unreachable_grafana_fails_without_printing_the_token(
    cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTOPS_GRAFANA_URL", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("VTOPS_GRAFANA_TOKEN", TOKEN)
    get_settings.cache_clear()
    result = cli_env.invoke(app, ["dashboards", "push", "--no-store"])
    assert result.exit_code == 1, result.output
    assert "cannot reach Grafana" in result.output or "Grafana answered" in result.output
    assert TOKEN not in result.output


def test_build_writes_into_the_given_folders(cli_env: CliRunner, tmp_path: Path) -> None:
    args = [
        "dashboards",
        "build",
        "--json-dir",
        str(tmp_path / "json"),
        "--provisioning-dir",
        str(tmp_path / "prov"),
    ]
    first = cli_env.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert len(list((tmp_path / "json").glob("*.json"))) == len(boards())
    assert (tmp_path / "prov/alerting/vtops-alerts.yaml").is_file()
    again = cli_env.invoke(app, args)
    assert "up to date" in again.output
