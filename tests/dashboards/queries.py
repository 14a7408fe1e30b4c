"""Run a dashboard's queries as Grafana would: its time range, its variables, its macros."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from clickhouse_connect.driver.query import QueryResult

from city.profile import load_city_profile
from dashboards.build import DEFAULT_DATABASE, build_dashboards
from dashboards.macros import ALL, Context, TimeRange, Variable, expand
from sinks.clickhouse.placeholders import fill
from tests.dashboards.conftest import Store

JSON = dict[str, Any]
_RELATIVE = re.compile(r"now-(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Grafana divides the range by the panel's width in points; about 300 is typical.
MAX_DATA_POINTS = 300


@cache
def boards() -> dict[str, JSON]:
    """The dashboards as committed: the default database and city."""
    return build_dashboards(load_city_profile(), DEFAULT_DATABASE)


def panels_with_sql() -> Iterator[tuple[str, JSON, JSON]]:
    """(dashboard uid, panel, target) for every SQL target of every dashboard."""
    for uid, board in boards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield uid, panel, target


def sql_for(store: Store, uid: str, panel: JSON, target: JSON) -> str:
    """The SQL of a target of `boards()` as built for the store's database and city."""
    built = next(p for p in store.boards[uid]["panels"] if p["id"] == panel["id"])
    return str(next(t for t in built["targets"] if t["refId"] == target["refId"])["rawSql"])


def time_range(board: JSON, now: datetime) -> TimeRange:
    match = _RELATIVE.fullmatch(board["time"]["from"])
    assert match, f"unexpected time.from {board['time']['from']!r}"
    span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    interval = timedelta(seconds=max(int(span.total_seconds()) // MAX_DATA_POINTS, 1))
    return TimeRange(now - span, now, interval)


def resolve_variables(
    board: JSON, store: Store, time: TimeRange, chosen: Mapping[str, Sequence[str]] = {}
) -> dict[str, Variable]:
    """Each variable's options (query variables run their SQL) and its selection."""
    resolved: dict[str, Variable] = {}
    for variable in board["templating"]["list"]:
        name = variable["name"]
        if variable["type"] == "query":
            sql = expand(variable["query"], Context(time, resolved))
            options = [str(row[0]) for row in store.client.query(sql).result_rows]
        else:
            options = [o["value"] for o in variable["options"]]
        current = variable["current"]["value"]
        default = current if isinstance(current, list) else [current]
        selection = list(chosen.get(name, default))
        if variable["multi"] and not chosen.get(name):
            selection = [ALL] if ALL in default else selection
        resolved[name] = Variable(options, selection, multi=variable["multi"])
    return resolved


def run(store: Store, sql: str, context: Context) -> QueryResult:
    """`sql` (built for the store, or a builder's SQL with its placeholders) as Grafana runs it."""
    return store.client.query(expand(fill(sql, store.database, store.profile.timezone), context))


def column_types(result: QueryResult) -> list[str]:
    return [t.name for t in result.column_types]
