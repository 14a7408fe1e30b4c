"""Grafana's provisioning files, the compose file, and the alert rules run on real rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from dashboards.build import PROVISIONING_DIR
from dashboards.macros import Context, TimeRange, expand
from dashboards.panels import DATASOURCE_TYPE, DATASOURCE_UID
from dashboards.pipeline import DLQ_SURGE_THRESHOLD, NO_CHECKPOINT_MINUTES
from dashboards.provisioning import (
    ALERT_RULES,
    DASHBOARDS_PATH,
    FOLDER_TITLE,
    AlertRule,
    alert_rule_payload,
    notifications_file,
)
from streams.settings import StreamSettings
from tests.dashboards.conftest import Store

COMPOSE = PROVISIONING_DIR.parents[1] / "docker-compose.yml"


def _load(relative: str) -> Any:
    return yaml.safe_load((PROVISIONING_DIR / relative).read_text(encoding="utf-8"))


def test_datasource_is_the_v4_plugin_over_http_as_the_read_only_user() -> None:
    document = _load("datasources/clickhouse.yaml")
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert (source["type"], source["uid"]) == (DATASOURCE_TYPE, DATASOURCE_UID)
    assert source["jsonData"]["host"] == "clickhouse"  # the compose service
    assert source["jsonData"]["port"] == 8123 and source["jsonData"]["protocol"] == "http"
    assert source["jsonData"]["defaultDatabase"] == "vtops"
    assert source["jsonData"]["username"] == "vtops_grafana"
    # Grafana substitutes the variable at start-up; no secret is in the file.
    assert source["secureJsonData"] == {"password": "$VTOPS_GRAFANA_CLICKHOUSE_PASSWORD"}


def test_dashboard_provider_reads_the_mounted_json_folder() -> None:
    (provider,) = _load("dashboards/vtops.yaml")["providers"]
    assert provider["type"] == "file" and provider["folder"] == FOLDER_TITLE
    assert provider["options"]["path"] == DASHBOARDS_PATH


def test_alert_rules_file_is_unified_alerting_v1() -> None:
    document = _load("alerting/vtops-alerts.yaml")
    assert document["apiVersion"] == 1
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {r["uid"] for r in rules} == {r.uid for r in ALERT_RULES}
    for group in document["groups"]:
        assert group["folder"] == FOLDER_TITLE and group["interval"] == "60s"
    for rule in rules:
        refs = {q["refId"]: q for q in rule["data"]}
        assert rule["condition"] in refs
        assert refs["A"]["datasourceUid"] == DATASOURCE_UID
        assert refs["A"]["model"]["editorType"] == "sql" and refs["A"]["model"]["format"] == 1
        assert refs["C"]["model"]["type"] == "threshold"
        # Grafana interpolates env vars in labels: none may hold a `$`.
        assert "$" not in "".join(rule["labels"].values())


def test_alert_rule_api_payload_names_folder_and_group() -> None:
    payload = alert_rule_payload(ALERT_RULES[0])
    assert payload["folderUID"] == "vtops-operations" and payload["ruleGroup"]
    assert payload["condition"] == "C" and payload["orgID"] == 1


def _evaluate(
    store: Store, rule: AlertRule, later: timedelta = timedelta(0)
) -> dict[tuple[Any, ...], float]:
    """Run the rule's query over its relative range and apply its threshold per series;
    evaluated `later` than the store's rows end."""
    now = store.expected.now + later
    time = TimeRange(now - timedelta(seconds=rule.window_s), now, timedelta(seconds=1))
    built = next(r for r in store.alert_rules if r.uid == rule.uid)  # for the store's database
    sql = built.data()[0]["model"]["rawSql"]
    result = store.client.query(expand(sql, Context(time)))
    firing = {}
    for row in result.result_rows:
        labels, value = tuple(row[:-1]), float(row[-1])
        if value > rule.above:
            firing[labels] = value
    return firing


def _rule(uid: str) -> AlertRule:
    return next(r for r in ALERT_RULES if r.uid == uid)


def test_traffic_critical_rule_fires_for_open_critical_alerts_only(populated_store: Store) -> None:
    """One instance per open alert, labelled with its id, kind, camera, ward and severity."""
    firing = _evaluate(populated_store, _rule("vtops-traffic-critical"))
    assert len(firing) == populated_store.expected.open_critical
    assert {labels[4] for labels in firing} == {"critical"}
    assert len({labels[0] for labels in firing}) == len(firing)
    warning = _evaluate(populated_store, _rule("vtops-traffic-warning"))
    assert len(warning) == populated_store.expected.open_warning
    assert {labels[4] for labels in warning} == {"warning"}


def test_dlq_surge_rule_fires_for_the_surging_topic(populated_store: Store) -> None:
    firing = _evaluate(populated_store, _rule("vtops-dlq-surge"))
    assert firing == {("camera.events",): 150.0}
    assert DLQ_SURGE_THRESHOLD < 150


def test_no_checkpoint_rule_fires_once_progress_rows_stop(populated_store: Store) -> None:
    """The store's last checkpoint is 10 s before its `now`: quiet then, firing once no row
    follows for the rule's minutes (a dead worker writes none), and when none was ever written."""
    rule = _rule("vtops-no-checkpoint")
    assert rule.above == NO_CHECKPOINT_MINUTES * 60 and rule.common()["noDataState"] == "Alerting"
    assert _evaluate(populated_store, rule) == {}
    assert (
        _evaluate(
            populated_store, rule, timedelta(minutes=NO_CHECKPOINT_MINUTES) - timedelta(seconds=20)
        )
        == {}
    )
    late = timedelta(minutes=NO_CHECKPOINT_MINUTES, seconds=30)
    assert _evaluate(populated_store, rule, late) == {(): late.total_seconds() + 10}
    (never,) = _evaluate(populated_store, rule, -timedelta(days=30)).values()
    assert never > 365 * 24 * 3600


# docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def _ports(service: dict[str, Any]) -> set[str]:
    published = {str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])}
    return published | {str(p) for p in service.get("expose", [])}


def test_compose_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "clickhouse", "grafana", "worker", "simulator"} <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    assert services["grafana"]["image"].startswith("grafana/grafana")
    for name in ("worker", "simulator"):
        assert services[name]["image"] == "vtops:local"  # built by infra/Dockerfile


def test_compose_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "9092" in _ports(services["kafka"])
    assert "127.0.0.1:9092:29092" in services["kafka"]["ports"]  # host clients
    assert "8123" in _ports(services["clickhouse"])
    assert "3000" in _ports(services["grafana"])
    kraft = services["kafka"]["environment"]
    assert kraft["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "PLAINTEXT://kafka:9092" in kraft["KAFKA_ADVERTISED_LISTENERS"]


def test_compose_grafana_mounts_and_plugin(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts[DASHBOARDS_PATH] == "../dashboards/json"
    assert (COMPOSE.parent / "grafana/provisioning").is_dir()
    assert (COMPOSE.parent / "../dashboards/json").resolve().is_dir()
    # The plugin and its pinned release: tests/infra/test_compose.py.
    assert "VTOPS_GRAFANA_CLICKHOUSE_PASSWORD" in grafana["environment"]


def test_compose_python_services_run_the_pipeline(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, command in (("worker", "worker"), ("simulator", "simulate")):
        service = services[name]
        assert service["command"][0] == command  # the image's entrypoint is `vtops`
        env = service["environment"]
        assert env["VTOPS_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["VTOPS_CLICKHOUSE_URL"].startswith("http://")
        assert env["VTOPS_CLICKHOUSE_URL"].endswith("@clickhouse:8123/vtops")


def test_compose_checks_the_health_of_every_long_running_service(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("kafka", "clickhouse", "worker"):
        assert services[name]["healthcheck"]["test"], name
    worker = services["worker"]
    port = StreamSettings.model_fields["metrics_port"].default
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])
    assert str(port) in _ports(worker)
    assert services["simulator"]["depends_on"]["worker"] == {"condition": "service_healthy"}


def test_compose_holds_no_secret(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for variable in (
        "VTOPS_CLICKHOUSE_PASSWORD",
        "VTOPS_GRAFANA_CLICKHOUSE_PASSWORD",
        "GF_SECURITY_ADMIN_PASSWORD",
    ):
        assert f"${{{variable}:?" in text, f"{variable} must come from the environment"


def test_notifications_group_traffic_alerts_by_kind_and_ward_for_the_contact_point() -> None:
    document = notifications_file()
    (contact,) = document["contactPoints"]
    assert {r["type"] for r in contact["receivers"]} == {"webhook", "email"}
    # Addresses come from the Grafana container's environment, never from the repository.
    assert all(str(v).startswith("$") for r in contact["receivers"] for v in
               [r["settings"].get("url") or r["settings"]["addresses"]])  # fmt: skip
    (policy,) = document["policies"]
    routes = {route["object_matchers"][0][2]: route for route in policy["routes"]}
    assert set(routes) == {rule.labels["team"] for rule in ALERT_RULES}
    assert {"kind", "ward"} <= set(routes["traffic"]["group_by"])
    assert policy["receiver"] == contact["name"]
