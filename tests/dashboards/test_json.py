"""The dashboards' JSON: committed and current, uniquely named, on the one datasource."""

from __future__ import annotations

from itertools import combinations

import pytest

from city.profile import load_city_profile
from dashboards.build import DEFAULT_DATABASE, rendered_files
from dashboards.macros import GRAFANA_BUILTINS, PLUGIN_MACROS, referenced_names
from dashboards.panels import DATASOURCE_TYPE, DATASOURCE_UID
from tests.dashboards.queries import JSON, boards

LIVE = {"vtops-traffic", "vtops-pipeline"}


def _datasources(node: object) -> list[JSON]:
    """Every `datasource` object anywhere in the JSON."""
    found: list[JSON] = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"])
        for value in node.values():
            found += _datasources(value)
    elif isinstance(node, list):
        for item in node:
            found += _datasources(item)
    return found


def test_committed_files_are_what_the_code_builds() -> None:
    stale = [
        str(path)
        for path, text in rendered_files(load_city_profile(), DEFAULT_DATABASE).items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `vtops dashboards build` and commit: {stale}"


def test_dashboard_uids_are_unique_and_stable() -> None:
    uids = [board["uid"] for board in boards().values()]
    assert sorted(uids) == ["vtops-cashless", "vtops-pipeline", "vtops-portal", "vtops-traffic"]


@pytest.mark.parametrize("uid", sorted(boards()))
def test_dashboard_header(uid: str) -> None:
    board = boards()[uid]
    assert board["schemaVersion"] >= 39
    assert board["id"] is None and board["title"] and "vtops" in board["tags"]
    assert len(board["tags"]) >= 2
    if uid in LIVE:
        assert board["refresh"] == "10s"


@pytest.mark.parametrize("uid", sorted(boards()))
def test_panels_have_unique_ids_and_do_not_overlap(uid: str) -> None:
    panels = boards()[uid]["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for a, b in combinations(panels, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{a['title']!r} overlaps {b['title']!r}"
        assert ga["x"] + ga["w"] <= 24


@pytest.mark.parametrize("uid", sorted(boards()))
def test_every_query_uses_the_clickhouse_datasource(uid: str) -> None:
    board = boards()[uid]
    sources = _datasources(board["panels"]) + _datasources(board["templating"])
    assert sources
    ours = [s for s in sources if s.get("type") != "grafana"]  # built-in annotations
    assert all(s == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID} for s in ours), ours
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["editorType"] == "sql" and target["rawSql"]
            # sqlutil.FormatQueryOption: 0 time series, 1 table.
            assert target["format"] == (0 if panel["type"] == "timeseries" else 1)


@pytest.mark.parametrize("uid", sorted(boards()))
def test_every_variable_in_sql_is_defined_or_a_macro(uid: str) -> None:
    board = boards()[uid]
    defined = {v["name"] for v in board["templating"]["list"]}
    texts = [t["rawSql"] for p in board["panels"] for t in p.get("targets", [])]
    texts += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    for text in texts:
        unknown = referenced_names(text) - defined - PLUGIN_MACROS - GRAFANA_BUILTINS
        assert not unknown, f"undefined {unknown} in:\n{text}"
    used = set().union(*(referenced_names(t) for t in texts))
    assert defined <= used, f"variables no query uses: {defined - used}"


@pytest.mark.parametrize("uid", sorted(boards()))
def test_query_variables_are_multi_value_with_all(uid: str) -> None:
    for variable in boards()[uid]["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["multi"] and variable["includeAll"], variable["name"]
            assert variable["current"]["value"] == ["$__all"]


def test_traffic_has_ward_and_camera_variables_and_a_geomap() -> None:
    board = boards()["vtops-traffic"]
    assert {"ward", "camera"} <= {v["name"] for v in board["templating"]["list"]}
    maps = [p for p in board["panels"] if p["type"] == "geomap"]
    assert len(maps) == 1
    layer = maps[0]["options"]["layers"][0]
    assert layer["location"] == {"mode": "coords", "latitude": "latitude", "longitude": "longitude"}
    assert layer["config"]["style"]["color"]["field"] == "saturation_pct"


def _step_values(thresholds: JSON) -> list[float]:
    return [step["value"] for step in thresholds["steps"] if step["value"] is not None]


def _panel(uid: str, title: str) -> JSON:
    return next(p for p in boards()[uid]["panels"] if p["title"] == title)


def test_article_values_are_thresholds() -> None:
    for title, value in (
        ("On-time resolution", 99.85),
        ("VNeID level-2 share", 99.17),
        ("Results digitally signed", 100.0),
    ):
        thresholds = _panel("vtops-portal", title)["fieldConfig"]["defaults"]["thresholds"]
        assert value in _step_values(thresholds), title
    utilities = _panel("vtops-cashless", "Utility bills paid cashless vs target")
    targets = {
        o["matcher"]["options"]: max(_step_values(o["properties"][0]["value"]))
        for o in utilities["fieldConfig"]["overrides"]
    }
    assert targets == {"electricity": 100.0, "water": 85.0, "telecom": 80.0}
