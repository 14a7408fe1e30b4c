"""push through the real grafana-client against a local HTTP stand-in for Grafana's API.

Checks what the in-memory fake cannot: the paths and verbs grafana-client sends, the bearer
token, and that Grafana's 404 answers are read as "missing" and anything else as an error.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from grafana_client.api import GrafanaApi

from city.profile import load_city_profile
from dashboards.build import DEFAULT_DATABASE
from dashboards.exceptions import GrafanaPushError
from dashboards.provisioning import (
    ALERT_RULES,
    CONTACT_POINT,
    alert_rules,
    notification_policy,
    receivers,
)
from dashboards.push import push_all
from tests.dashboards.queries import boards

TOKEN = "glsa_only-in-the-header"
CONTACT_POINTS = "/api/v1/provisioning/contact-points"
POLICIES = "/api/v1/provisioning/policies"


class Grafana:
    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.requests: list[tuple[str, str]] = []
        self.refuse_dashboards = False

    def contact_points(self) -> list[Any]:
        return [v for k, v in self.objects.items() if k.startswith(f"{CONTACT_POINTS}/")]


def _handler(state: Grafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, verb: str) -> None:
            assert self.headers["Authorization"] == f"Bearer {TOKEN}"
            length = int(self.headers.get("Content-Length") or 0)
            body: Any = json.loads(self.rfile.read(length)) if length else {}
            path = self.path
            state.requests.append((verb, path))
            if verb == "GET":
                if path.startswith(f"{CONTACT_POINTS}?"):
                    return self._answer(200, state.contact_points())
                if path == POLICIES and path not in state.objects:
                    return self._answer(200, {"receiver": "grafana-default-email"})
                if path in state.objects:
                    return self._answer(200, state.objects[path])
                group = re.fullmatch(r"/api/v1/provisioning/folder/(.+)/rule-groups/(.+)", path)
                if group:
                    return self._answer(200, {"title": group.group(2), "interval": 10})
                return self._answer(404, {"message": "not found"})
            if path == "/api/dashboards/db":
                if state.refuse_dashboards:
                    return self._answer(412, {"message": "version-mismatch"})
                state.objects[f"/api/dashboards/uid/{body['dashboard']['uid']}"] = body
                return self._answer(200, {"status": "success"})
            created = {
                "/api/folders": "/api/folders/{uid}",
                "/api/datasources": "/api/datasources/uid/{uid}",
                "/api/v1/provisioning/alert-rules": "/api/v1/provisioning/alert-rules/{uid}",
                CONTACT_POINTS: CONTACT_POINTS + "/{uid}",
            }
            key = created[path].format(uid=body["uid"]) if path in created else path
            state.objects[key] = body
            return self._answer(200, body)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[Grafana, GrafanaApi]]:
    state = Grafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api = GrafanaApi.from_url(f"http://127.0.0.1:{server.server_port}", credential=TOKEN)
    yield state, api
    server.shutdown()


def _push(api: GrafanaApi) -> Any:
    return push_all(
        api,
        list(boards().values()),
        clickhouse_host="clickhouse",
        clickhouse_port=8123,
        clickhouse_password="pw",
        database=DEFAULT_DATABASE,
        rules=alert_rules(DEFAULT_DATABASE, load_city_profile().timezone),
        receivers=receivers("https://hooks.example/vtops", "ops@example.vn"),
    )


def test_push_speaks_grafanas_api(grafana: tuple[Grafana, GrafanaApi]) -> None:
    state, api = grafana
    first = _push(api)
    assert first.folder == "created" and first.datasource == "created"
    assert ("POST", "/api/folders") in state.requests
    assert ("POST", "/api/datasources") in state.requests
    assert state.requests.count(("POST", "/api/dashboards/db")) == len(boards())
    assert state.requests.count(("POST", "/api/v1/provisioning/alert-rules")) == len(ALERT_RULES)
    assert ("PUT", "/api/v1/provisioning/folder/vtops-operations/rule-groups/vtops-traffic") in (
        state.requests
    )
    # Where the rules' notifications go: the contact point, then the tree that routes to it.
    assert state.requests.count(("POST", CONTACT_POINTS)) == 2
    assert state.requests[-1] == ("PUT", POLICIES)
    assert state.objects[POLICIES] == notification_policy()
    assert {p["name"] for p in state.contact_points()} == {CONTACT_POINT}
    state.requests.clear()
    second = _push(api)
    assert second.datasource == "updated" and set(second.alert_rules.values()) == {"updated"}
    assert ("PUT", "/api/datasources/uid/vtops-clickhouse") in state.requests
    assert not [r for r in state.requests if r == ("POST", "/api/v1/provisioning/alert-rules")]
    assert ("PUT", f"{CONTACT_POINTS}/vtops-webhook") in state.requests
    assert ("POST", CONTACT_POINTS) not in state.requests
    assert second.notification_policy == "unchanged"


def test_a_refused_dashboard_stops_the_push_with_grafanas_reason(
    grafana: tuple[Grafana, GrafanaApi],
) -> None:
    state, api = grafana
    state.refuse_dashboards = True
    with pytest.raises(GrafanaPushError) as caught:
        _push(api)
    assert (
        str(caught.value) == "dashboard vtops-traffic: Grafana answered HTTP 412: version-mismatch"
    )
    assert TOKEN not in str(caught.value)
