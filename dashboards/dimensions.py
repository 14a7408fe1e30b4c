"""The city profile as small ClickHouse dimension tables the dashboards join against.

The stream tables carry codes (`camera_id`, `ward`, `agency`, `procedure_code`); positions,
roads and names live in the city profile. `load_dimensions` copies them into the store's
`cameras`, `wards`, `agencies` and `procedures` (database `vtops` by default). Callers:
`vtops dashboards push` and `prepare-store`, worker setup, and the dashboard tests. It is
idempotent: each table is created when missing, then emptied and refilled from the profile in
one insert, so a changed profile replaces the old rows instead of adding to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from clickhouse_connect.driver.client import Client

from city.profile import CityProfile

logger = logging.getLogger(__name__)


class Dimension(NamedTuple):
    columns: tuple[tuple[str, str], ...]  # (name, ClickHouse type), in insert order
    key: str
    rows: Callable[[CityProfile], list[tuple[Any, ...]]]

    @property
    def ddl(self) -> str:
        return ", ".join(f"{name} {kind}" for name, kind in self.columns)


def _cameras(city: CityProfile) -> list[tuple[Any, ...]]:
    unit = city.unit_of_ward
    return [
        (
            c.camera_id,
            c.kind,
            c.ward,
            unit[c.ward],
            c.road,
            c.lat,
            c.lon,
            c.lanes,
            int(c.arterial),
            int(c.beach_road),
        )
        for c in city.cameras
    ]


def _wards(city: CityProfile) -> list[tuple[Any, ...]]:
    units = {u.code: u.name for u in city.units_2025}
    return [
        (w.code, w.name, w.unit_2025, units[w.unit_2025], w.center.lat, w.center.lon, w.area_km2)
        for w in city.wards
    ]


def _agencies(city: CityProfile) -> list[tuple[Any, ...]]:
    return [(a.agency, a.name, a.level, a.ward) for a in city.agencies]


def _procedures(city: CityProfile) -> list[tuple[Any, ...]]:
    return [
        (p.procedure_code, p.name, p.level, p.service_level, p.legal_days, p.agency)
        for p in city.procedures
    ]


_TEXT = "String"
_CODE = "LowCardinality(String)"

DIMENSIONS: Final[dict[str, Dimension]] = {
    "cameras": Dimension(
        (
            ("camera_id", _TEXT),
            ("kind", _CODE),
            ("ward", _CODE),
            ("unit_2025", _CODE),
            ("road", _TEXT),
            ("lat", "Float64"),
            ("lon", "Float64"),
            ("lanes", "UInt8"),
            ("arterial", "UInt8"),
            ("beach_road", "UInt8"),
        ),
        "camera_id",
        _cameras,
    ),
    "wards": Dimension(
        (
            ("ward", _TEXT),
            ("name", _TEXT),
            ("unit_2025", _CODE),
            ("unit_2025_name", _TEXT),
            ("lat", "Float64"),
            ("lon", "Float64"),
            ("area_km2", "Float64"),
        ),
        "ward",
        _wards,
    ),
    "agencies": Dimension(
        (("agency", _TEXT), ("name", _TEXT), ("level", _CODE), ("ward", "Nullable(String)")),
        "agency",
        _agencies,
    ),
    "procedures": Dimension(
        (
            ("procedure_code", _TEXT),
            ("name", _TEXT),
            ("level", _CODE),
            ("service_level", _CODE),
            ("legal_days", "UInt8"),
            ("agency", "Nullable(String)"),
        ),
        "procedure_code",
        _procedures,
    ),
}

DIMENSION_TABLES: Final[tuple[str, ...]] = tuple(DIMENSIONS)


def load_dimensions(client: Client, database: str, profile: CityProfile) -> dict[str, int]:
    """Create and refill the dimension tables from `profile`; returns rows per table."""
    loaded: dict[str, int] = {}
    for table, dimension in DIMENSIONS.items():
        target = f"{database}.{table}"
        client.command(
            f"CREATE TABLE IF NOT EXISTS {target} ({dimension.ddl}) "
            f"ENGINE = ReplacingMergeTree ORDER BY {dimension.key}"
        )
        rows = dimension.rows(profile)
        client.command(f"TRUNCATE TABLE {target}")
        if rows:
            client.insert(target, rows, column_names=[name for name, _ in dimension.columns])
        loaded[table] = len(rows)
        logger.info("dimension loaded table=%s rows=%d", target, len(rows))
    return loaded
