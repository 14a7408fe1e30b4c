"""Every panel's and alert rule's SQL on the output of a real run (`tests.city_run`): city
events from the simulator and a few bad messages, through Kafka and `vtops worker`, into the
embedded ClickHouse.

The synthetic rows of `populated_store` check numbers against independent answers; this run
checks that what the pipeline itself writes is what the panels expect to read. Like that store,
the run is configured for another database (VTOPS_CLICKHOUSE_DATABASE) and a city in another
time zone (VTOPS_CITY_PROFILE): the worker makes its store for them, the panels read it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from dashboards import pipeline
from dashboards.dimensions import load_dimensions
from dashboards.macros import Context, TimeRange, expand
from dashboards.provisioning import ALERT_RULES, AlertRule
from tests.city_run import JAMMED_CAMERA, OFFLINE_CAMERA, city_pipeline, run_the_city
from tests.dashboards.city_rows import Expected
from tests.dashboards.conftest import DATABASE, Store, other_city
from tests.dashboards.queries import JSON, panels_with_sql, resolve_variables, run, sql_for
from tests.dashboards.queries import time_range as board_range
from tests.dashboards.test_queries import _check_shape, _id

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline_output(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    profile = other_city()
    city = city_pipeline(tmp_path_factory.mktemp("pipeline-output"), profile, DATABASE)
    now = run_the_city(city, profile)
    with city.store() as client:
        load_dimensions(client, DATABASE, profile)
        yield Store(client, DATABASE, profile, Expected(now=now))


PANELS = list(panels_with_sql())


def _now_of(store: Store, uid: str) -> datetime:
    """The pipeline's own health is stamped with wall-clock times; the city's with event times."""
    return datetime.now(store.profile.tz) if uid == pipeline.UID else store.expected.now


@pytest.mark.parametrize("item", PANELS, ids=[_id(p) for p in PANELS])
def test_panel_runs_on_pipeline_output(
    pipeline_output: Store, item: tuple[str, JSON, JSON]
) -> None:
    uid, panel, target = item
    board = pipeline_output.boards[uid]
    time = board_range(board, _now_of(pipeline_output, uid))
    variables = resolve_variables(board, pipeline_output, time)
    sql = sql_for(pipeline_output, uid, panel, target)
    result = run(pipeline_output, sql, Context(time, variables))
    _check_shape(panel, target, result, time)


@pytest.mark.parametrize("rule", ALERT_RULES, ids=[r.uid for r in ALERT_RULES])
def test_alert_rule_runs_on_pipeline_output(pipeline_output: Store, rule: AlertRule) -> None:
    built = next(r for r in pipeline_output.alert_rules if r.uid == rule.uid)
    sql = built.data()[0]["model"]["rawSql"]
    dead_letters = "dlq_events" in sql
    # Dead letters and progress rows are stamped with wall-clock time, like pipeline health.
    wall_clock = dead_letters or "pipeline_progress" in sql
    now = datetime.now(pipeline_output.profile.tz) if wall_clock else pipeline_output.expected.now
    time = TimeRange(now - timedelta(seconds=rule.window_s), now, timedelta(seconds=1))
    result = pipeline_output.client.query(expand(sql, Context(time)))
    values = [float(row[-1]) for row in result.result_rows]  # what Grafana compares
    if "traffic_alerts" in sql:
        # One instance per open alert of the rule's severity, labelled with its id; the
        # injected offline camera is among the warnings.
        open_alerts = pipeline_output.client.query(
            f"SELECT alert_id, kind, camera_id FROM {DATABASE}.traffic_alerts FINAL"
            " WHERE status = 'open' AND severity = {severity:String}",
            parameters={"severity": rule.severity},
        ).result_rows
        assert sorted(row[0] for row in result.result_rows) == sorted(r[0] for r in open_alerts)
        assert all(value > rule.above for value in values)
        injected = {"warning": ("camera_offline", OFFLINE_CAMERA),
                    "critical": ("congestion", JAMMED_CAMERA)}  # fmt: skip
        assert injected[rule.severity] in {(r[1], r[2]) for r in open_alerts}
    elif dead_letters:
        assert sum(values) == 3  # the run's three bad messages, within the rule's window
    elif wall_clock:
        # The run checkpointed minutes ago at most: the worker is not reported dead.
        assert values and max(values) < rule.above
    else:  # a new rule must say what it gives on a real run
        pytest.fail(f"no expectation for alert rule {rule.uid} on the pipeline's output")


def test_dead_letters_of_the_run_reach_the_pipeline_health_queries(pipeline_output: Store) -> None:
    rows = pipeline_output.client.query(
        f"SELECT source_topic, count() FROM {DATABASE}.dlq_events FINAL GROUP BY source_topic "
        "ORDER BY source_topic"
    ).result_rows
    assert [(topic.split(".", 1)[1], n) for topic, n in rows] == [
        ("camera.events", 2),
        ("payments.terminal-counts", 1),
    ]
