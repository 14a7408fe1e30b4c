"""Macro and variable expansion match the ClickHouse plugin and Grafana's frontend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import (
    ALL,
    Context,
    MacroError,
    TimeRange,
    Variable,
    expand,
    expand_macros,
    interpolate_variables,
)

START = datetime(2024, 9, 14, 0, 0, tzinfo=UTC)  # 1726272000
END = datetime(2024, 9, 14, 3, 0, 0, 500_000, tzinfo=UTC)
TIME = TimeRange(START, END, timedelta(seconds=30))


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        ("$__timeFilter(ts)", "ts >= toDateTime(1726272000) AND ts <= toDateTime(1726282800)"),
        (
            "$__timeFilter_ms(ts)",
            "ts >= fromUnixTimestamp64Milli(1726272000000) AND "
            "ts <= fromUnixTimestamp64Milli(1726282800500)",
        ),
        ("$__dateFilter(day)", "day >= toDate('2024-09-14') AND day <= toDate('2024-09-14')"),
        (
            "$__dt(day, ts)",
            "(day >= toDate('2024-09-14') AND day <= toDate('2024-09-14')) AND "
            "(ts >= toDateTime(1726272000) AND ts <= toDateTime(1726282800))",
        ),
        ("$__timeInterval(ts)", "toStartOfInterval(toDateTime(ts), INTERVAL 30 second)"),
        (
            "$__timeInterval_ms(ts)",
            "toStartOfInterval(toDateTime64(ts, 3), INTERVAL 30000 millisecond)",
        ),
        ("$__interval_s", "30"),
        ("$__fromTime - INTERVAL 5 MINUTE", "toDateTime(1726272000) - INTERVAL 5 MINUTE"),
        ("$__toTime", "toDateTime(1726282800)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1726272000000)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1726282800500)"),
        # Nested parentheses stay inside one argument.
        (
            "$__timeInterval(toDateTime(ts, 'UTC'))",
            "toStartOfInterval(toDateTime(toDateTime(ts, 'UTC')), INTERVAL 30 second)",
        ),
    ],
)
def test_plugin_macros(sql: str, expanded: str) -> None:
    assert expand_macros(sql, TIME) == expanded


def test_interval_is_at_least_one_second() -> None:
    short = TimeRange(START, END, timedelta(milliseconds=200))
    assert expand_macros("$__interval_s", short) == "1"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeFilter()", "expects 1"),
        ("$__nope(ts)", "unknown macro"),
        ("$__timeFilter(ts", "unclosed"),
    ],
)
def test_bad_macro_calls_are_refused(sql: str, message: str) -> None:
    with pytest.raises(MacroError, match=message):
        expand_macros(sql, TIME)


WARDS = Variable(["phuong-1", "long-son", "o'brien"])


@pytest.mark.parametrize(
    ("sql", "variables", "expanded"),
    [
        ("${ward:singlequote}", {"ward": WARDS}, r"'phuong-1','long-son','o\'brien'"),
        ("${ward:sqlstring}", {"ward": WARDS}, "'phuong-1','long-son','o''brien'"),
        ("${ward:csv}", {"ward": WARDS}, "phuong-1,long-son,o'brien"),
        # The plugin's own format: a multi-value array is quoted and joined...
        ("$ward", {"ward": Variable(["a", "b"])}, "'a','b'"),
        ("[[ward]]", {"ward": Variable(["a", "b"], ["b"])}, "'b'"),
        # ...a single-value variable is inserted as is.
        (
            "INTERVAL $n MINUTE",
            {"n": Variable(["5", "10"], ["10"], multi=False)},
            "INTERVAL 10 MINUTE",
        ),
        ("${ward:singlequote}", {"ward": Variable(["a", "b"], ["b"])}, "'b'"),
        ("$__interval", {}, "30s"),
        ("$__interval_ms", {}, "30000"),
        ("$__timeFilter(ts)", {}, "$__timeFilter(ts)"),  # left to the backend
    ],
)
def test_template_variables(sql: str, variables: dict[str, Variable], expanded: str) -> None:
    assert interpolate_variables(sql, variables, TIME) == expanded


def test_all_expands_to_every_option() -> None:
    ward = Variable(["a", "b", "c"], [ALL])
    assert expand("w IN (${ward:singlequote})", Context(TIME, {"ward": ward})) == (
        "w IN ('a','b','c')"
    )


def test_undefined_variable_is_an_error() -> None:
    with pytest.raises(MacroError, match="neither a variable nor a macro"):
        interpolate_variables("$camera", {}, TIME)


def test_time_range_must_be_aware() -> None:
    with pytest.raises(MacroError):
        TimeRange(datetime(2024, 1, 1), datetime(2024, 1, 2))
