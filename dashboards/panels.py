"""Typed builders for the Grafana JSON every dashboard module shares.

The dashboards read ClickHouse through the official plugin (`grafana-clickhouse-datasource`
v4). Its SQL targets carry `editorType: "sql"`, the query in `rawSql`, and a `format` the
backend reads as the grafana-plugin-sdk `sqlutil` option: 0 = time series (a long frame is
pivoted to one series per string column), 1 = table. Panels are plain dicts because that is
what Grafana stores; these helpers keep their shape in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from textwrap import dedent
from typing import Any, Final, Literal

JSON = dict[str, Any]

DATASOURCE_TYPE: Final = "grafana-clickhouse-datasource"
# The plugin release these targets and macros.py are written against; the compose file
# installs exactly this one (tests/infra/test_compose.py).
PLUGIN_VERSION: Final = "4.23.5"
DATASOURCE_UID: Final = "vtops-clickhouse"
DATASOURCE: Final[JSON] = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


class Format(IntEnum):
    """`format` of a target, as the plugin's backend (sqlutil.FormatQueryOption) reads it."""

    TIME_SERIES = 0
    TABLE = 1


Step = tuple[float | None, str]


def sql_target(sql: str, fmt: Format = Format.TABLE, ref_id: str = "A") -> JSON:
    return {
        "datasource": dict(DATASOURCE),
        "editorType": "sql",
        "format": int(fmt),
        "queryType": "timeseries" if fmt is Format.TIME_SERIES else "table",
        "rawSql": dedent(sql).strip(),
        "refId": ref_id,
    }


def thresholds(*steps: Step) -> JSON:
    """Absolute thresholds; the first step is the base (value None)."""
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def field_config(
    *,
    unit: str = "short",
    steps: Sequence[Step] = ((None, "green"),),
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    color_mode: str = "thresholds",
    custom: JSON | None = None,
    overrides: Sequence[JSON] = (),
) -> JSON:
    defaults: JSON = {
        "unit": unit,
        "color": {"mode": color_mode},
        "thresholds": thresholds(*steps),
        "mappings": [],
    }
    for key, value in (("decimals", decimals), ("min", minimum), ("max", maximum)):
        if value is not None:
            defaults[key] = value
    if custom is not None:
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": list(overrides)}


def override(field_name: str, properties: dict[str, Any]) -> JSON:
    """Per-field settings keyed by Grafana property id (`thresholds`, `custom.lineStyle`...)."""
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def _panel(kind: str, title: str, description: str, targets: Sequence[JSON], **extra: Any) -> JSON:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": dict(DATASOURCE),
        "targets": list(targets),
        **extra,
    }


def stat(
    title: str, sql: str, *, description: str, fields: JSON | None = None, text_mode: str = "auto"
) -> JSON:
    """One number (or one per column) from a query returning a single row."""
    options = {
        "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": text_mode,
    }
    return _panel(
        "stat",
        title,
        description,
        [sql_target(sql)],
        options=options,
        fieldConfig=fields or field_config(),
    )


def timeseries(
    title: str,
    sql: str,
    *,
    description: str,
    fields: JSON | None = None,
    style: Literal["line", "bars"] = "line",
    stacking: Literal["none", "normal", "percent"] = "none",
) -> JSON:
    """Series over time: the query's first column is `time`, the rest values or labels."""
    custom: JSON = {
        "drawStyle": "bars" if style == "bars" else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if style == "bars" else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": stacking, "group": "A"},
        "thresholdsStyle": {"mode": "off"},
    }
    config = fields or field_config(color_mode="palette-classic")
    config = {
        "defaults": {**config["defaults"], "custom": custom},
        "overrides": config["overrides"],
    }
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel(
        "timeseries",
        title,
        description,
        [sql_target(sql, Format.TIME_SERIES)],
        options=options,
        fieldConfig=config,
    )


def table(title: str, sql: str, *, description: str, fields: JSON | None = None) -> JSON:
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    return _panel(
        "table",
        title,
        description,
        [sql_target(sql)],
        options=options,
        fieldConfig=fields or field_config(),
    )


def bargauge(title: str, sql: str, *, description: str, fields: JSON | None = None) -> JSON:
    """One bar per column (or per row with a string column) of a table query."""
    options = {
        "reduceOptions": {"values": True, "calcs": ["lastNotNull"], "fields": ""},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
        "valueMode": "color",
    }
    return _panel(
        "bargauge",
        title,
        description,
        [sql_target(sql)],
        options=options,
        fieldConfig=fields or field_config(),
    )


def piechart(title: str, sql: str, *, description: str, unit: str = "short") -> JSON:
    """Slices from the numeric columns of a one-row query."""
    options = {
        "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
        "pieType": "donut",
        "legend": {"displayMode": "table", "placement": "right", "values": ["percent"]},
        "tooltip": {"mode": "single"},
    }
    return _panel(
        "piechart",
        title,
        description,
        [sql_target(sql)],
        options=options,
        fieldConfig=field_config(unit=unit, color_mode="palette-classic"),
    )


def geomap(
    title: str,
    sql: str,
    *,
    description: str,
    center: tuple[float, float],
    zoom: float,
    color_field: str,
    size_field: str,
    fields: JSON,
) -> JSON:
    """Markers at the query's `latitude`/`longitude` columns, coloured by one field."""
    layer = {
        "type": "markers",
        "name": "Cameras",
        "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
        "tooltip": True,
        "config": {
            "showLegend": True,
            "style": {
                "color": {"field": color_field, "fixed": "dark-green"},
                "size": {"field": size_field, "fixed": 6, "min": 4, "max": 14},
                "opacity": 0.85,
                "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
            },
        },
    }
    options = {
        "view": {"id": "coords", "lat": center[0], "lon": center[1], "zoom": zoom},
        "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
        "basemap": {"type": "default", "name": "Basemap"},
        "layers": [layer],
        "tooltip": {"mode": "details"},
    }
    return _panel(
        "geomap", title, description, [sql_target(sql)], options=options, fieldConfig=fields
    )


def query_variable(name: str, label: str, sql: str, *, description: str = "") -> JSON:
    """A multi-value variable with All, filled by SQL (first column value, second label).

    Queries use it as `${name:singlequote}`: Grafana quotes each value, and All expands to
    every option, so `col IN (${name:singlequote})` is always valid SQL.
    """
    query = dedent(sql).strip()
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": dict(DATASOURCE),
        "query": query,
        "definition": query,
        "refresh": 1,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def custom_variable(
    name: str,
    label: str,
    values: Sequence[str],
    *,
    default: str | None = None,
    multi: bool = False,
    description: str = "",
) -> JSON:
    """A fixed list; multi-value ones also get All. `default` None selects All."""
    chosen = default if default is not None else "$__all"
    options = [{"selected": v == chosen, "text": v, "value": v} for v in values]
    text = "All" if chosen == "$__all" else chosen
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "description": description,
        "query": ",".join(values),
        "multi": multi,
        "includeAll": multi,
        "current": {
            "selected": True,
            "text": [text] if multi else text,
            "value": [chosen] if multi else chosen,
        },
        "options": options,
        "hide": 0,
        "skipUrlSync": False,
    }
