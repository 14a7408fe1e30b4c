"""Where panels sit and what wraps them: Grafana's 24-column grid and the dashboard JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from dashboards.panels import JSON
from sinks.clickhouse.placeholders import TIMEZONE

SCHEMA_VERSION: Final = 39
GRID_WIDTH: Final = 24


class Layout:
    """Places panels left to right in Grafana's 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[JSON] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def _newline(self) -> None:
        self._x, self._y, self._line_height = 0, self._y + self._line_height, 0

    def add(self, panel: JSON, width: int, height: int) -> None:
        if self._x + width > GRID_WIDTH:
            self._newline()
        grid = {"x": self._x, "y": self._y, "w": width, "h": height}
        self.panels.append({"id": len(self.panels) + 1, "gridPos": grid, **panel})
        self._x += width
        self._line_height = max(self._line_height, height)

    def row(self, title: str) -> None:
        if self._x:
            self._newline()
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, GRID_WIDTH, 1)
        self._newline()


def dashboard(
    uid: str,
    title: str,
    *,
    description: str,
    tags: Sequence[str],
    layout: Layout,
    variables: Sequence[JSON] = (),
    refresh: str = "10s",
    time_from: str = "now-3h",
) -> JSON:
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["vtops", *tags],
        "timezone": TIMEZONE,  # the city profile's, filled by dashboards/build.py
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "templating": {"list": list(variables)},
        "annotations": {"list": [_builtin_annotations()]},
        "links": [
            {
                "type": "dashboards",
                "title": "Operations",
                "tags": ["vtops"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": layout.panels,
    }


def _builtin_annotations() -> JSON:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
