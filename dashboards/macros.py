"""Expand a dashboard query the way Grafana and the ClickHouse plugin do, to run it elsewhere.

Two passes, in Grafana's order:
1. the frontend interpolates template variables (`$ward`, `${ward}`, `${ward:singlequote}`,
   `[[ward]]`) and its own built-ins (`$__interval`, `$__from`, ...); a multi-value
   variable set to All becomes every option's value. The plugin formats a bare multi-value
   variable as `'a','b'` (its `format` callback), a bare single value stays unquoted.
2. the plugin's backend replaces its macros (grafana/clickhouse-datasource,
   pkg/macros/macros.go): `$__timeFilter(c)` ->
   `c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)`,
   `$__timeFilter_ms`, `$__dateFilter`, `$__dateTimeFilter`/`$__dt`, `$__timeInterval(c)` ->
   `toStartOfInterval(toDateTime(c), INTERVAL <n> second)`, `$__timeInterval_ms`,
   `$__interval_s`, `$__fromTime`, `$__toTime`, `$__fromTime_ms`, `$__toTime_ms`.

Used by the tests to execute every panel and alert query against the embedded engine. The
queries given here are built for a store already (dashboards/build.py fills `{db}` and `{tz}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ALL = "$__all"

# Macros of the plugin's backend, and the frontend built-ins a query may use.
PLUGIN_MACROS = frozenset(
    {
        "__timeFilter",
        "__timeFilter_ms",
        "__dateFilter",
        "__dateTimeFilter",
        "__dt",
        "__timeInterval",
        "__timeInterval_ms",
        "__interval_s",
        "__fromTime",
        "__toTime",
        "__fromTime_ms",
        "__toTime_ms",
    }
)
GRAFANA_BUILTINS = frozenset(
    {
        "__interval",
        "__interval_ms",
        "__from",
        "__to",
        "__range",
        "__range_s",
        "__range_ms",
        "__rate_interval",
        "__dashboard",
        "__org",
        "__user",
        "__timezone",
    }
)

# `${name}` / `${name:format}`, `[[name]]`, `$name`
VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)")


class MacroError(ValueError):
    """A query names a macro or variable that cannot be expanded, or misuses one."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MacroError("time range ends must be timezone-aware")


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's options and current selection (`ALL` for All)."""

    options: Sequence[str]
    current: Sequence[str] = (ALL,)
    multi: bool = True

    @property
    def values(self) -> list[str]:
        return list(self.options) if ALL in self.current else list(self.current)


@dataclass(frozen=True)
class Context:
    time: TimeRange
    variables: Mapping[str, Variable] = field(default_factory=dict)


def _sql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format(values: list[str], fmt: str | None, multi: bool) -> str:
    """Grafana's variable formats (the ones SQL needs) and the plugin's default."""
    if fmt in ("singlequote", "sqlstring"):
        if fmt == "sqlstring":
            return ",".join("'" + v.replace("'", "''") + "'" for v in values)
        return ",".join(_sql_quote(v) for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt in ("csv", "raw"):
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt is not None:
        raise MacroError(f"variable format {fmt!r} is not supported here")
    # The plugin's format callback: a multi-value variable's array becomes 'a','b' (even
    # with one value selected); a single-value variable's string stays as is.
    if multi:
        return "'" + "','".join(values) + "'"
    return values[0] if values else ""


def _builtin(name: str, time: TimeRange) -> str:
    interval_ms = int(time.interval.total_seconds() * 1000)
    span = time.end - time.start
    values = {
        "__interval": f"{max(interval_ms // 1000, 1)}s",
        "__interval_ms": str(interval_ms),
        "__from": str(int(time.start.timestamp() * 1000)),
        "__to": str(int(time.end.timestamp() * 1000)),
        "__range_s": str(int(span.total_seconds())),
        "__range_ms": str(int(span.total_seconds() * 1000)),
        "__range": f"{int(span.total_seconds())}s",
        "__rate_interval": f"{max(4 * interval_ms // 1000, 1)}s",
    }
    if name not in values:
        raise MacroError(f"Grafana built-in ${name} has no value in tests")
    return values[name]


def interpolate_variables(sql: str, variables: Mapping[str, Variable], time: TimeRange) -> str:
    """Pass 1: template variables and Grafana built-ins; plugin macros are left in place."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        fmt = match.group(2)
        if name in PLUGIN_MACROS:
            return match.group(0)
        if name in GRAFANA_BUILTINS:
            return _builtin(name, time)
        variable = variables.get(name)
        if variable is None:
            raise MacroError(f"query uses ${name}, which is neither a variable nor a macro")
        return _format(variable.values, fmt, variable.multi)

    return VARIABLE.sub(replace, sql)


def _arguments(sql: str, open_at: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose '(' is at `open_at`; nesting-aware."""
    depth, start, args = 0, open_at + 1, []
    for i in range(open_at, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i].strip())
                return [a for a in args if a], i + 1
        elif char == "," and depth == 1:
            args.append(sql[start:i].strip())
            start = i + 1
    raise MacroError(f"unclosed macro call at offset {open_at}")


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _date(moment: datetime) -> str:
    # Go formats the request's time.Time, which Grafana sends in UTC.
    return f"toDate('{moment.astimezone(UTC).strftime('%Y-%m-%d')}')"


def _macros(time: TimeRange) -> dict[str, tuple[int, Callable[[list[str]], str]]]:
    start, end = time.start, time.end
    second = max(int(time.interval.total_seconds()), 1)
    milli = max(int(time.interval.total_seconds() * 1000), 1)
    dt = (f"toDateTime({_seconds(start)})", f"toDateTime({_seconds(end)})")
    dt64 = (
        f"fromUnixTimestamp64Milli({_millis(start)})",
        f"fromUnixTimestamp64Milli({_millis(end)})",
    )

    def between(bounds: tuple[str, str]) -> Callable[[list[str]], str]:
        return lambda a: f"{a[0]} >= {bounds[0]} AND {a[0]} <= {bounds[1]}"

    date_filter = between((_date(start), _date(end)))
    return {
        "__fromTime": (0, lambda a: dt[0]),
        "__toTime": (0, lambda a: dt[1]),
        "__fromTime_ms": (0, lambda a: dt64[0]),
        "__toTime_ms": (0, lambda a: dt64[1]),
        "__interval_s": (0, lambda a: str(second)),
        "__timeFilter": (1, between(dt)),
        "__timeFilter_ms": (1, between(dt64)),
        "__dateFilter": (1, date_filter),
        "__dateTimeFilter": (2, lambda a: f"({date_filter(a)}) AND ({between(dt)(a[1:])})"),
        "__dt": (2, lambda a: f"({date_filter(a)}) AND ({between(dt)(a[1:])})"),
        "__timeInterval": (
            1,
            lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {second} second)",
        ),
        "__timeInterval_ms": (
            1,
            lambda a: f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {milli} millisecond)",
        ),
    }


MACRO = re.compile(r"\$(__\w+)")


def expand_macros(sql: str, time: TimeRange) -> str:
    """Pass 2: the plugin's backend macros."""
    macros = _macros(time)
    out: list[str] = []
    position = 0
    for match in MACRO.finditer(sql):
        if match.start() < position:
            continue
        name = match.group(1)
        if name not in macros:
            raise MacroError(f"unknown macro ${name}")
        arity, render = macros[name]
        out.append(sql[position : match.start()])
        position = match.end()
        args: list[str] = []
        if position < len(sql) and sql[position] == "(":
            args, position = _arguments(sql, position)
        if len(args) != arity:
            raise MacroError(f"${name} expects {arity} argument(s), got {len(args)}")
        out.append(render(args))
    out.append(sql[position:])
    return "".join(out)


def expand(sql: str, context: Context) -> str:
    """The SQL ClickHouse receives for `sql` under `context`."""
    return expand_macros(interpolate_variables(sql, context.variables, context.time), context.time)


def referenced_names(sql: str) -> set[str]:
    """Every `$name` a query uses (variables, built-ins and macros), for definition checks."""
    return {m.group(1) or m.group(3) or m.group(4) for m in VARIABLE.finditer(sql)}
