"""The city profile's dimension tables: complete, exact, and refilled rather than appended."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dashboards.dimensions import load_dimensions
from tests.dashboards.conftest import Store

VTOPS = str(Path(sys.executable).parent / "vtops")


def _count(store: Store, table: str) -> int:
    return int(
        store.client.query(f"SELECT count() FROM {store.database}.{table}").result_rows[0][0]
    )


def test_loading_twice_leaves_one_row_per_record(populated_store: Store) -> None:
    profile = populated_store.profile
    loaded = load_dimensions(populated_store.client, populated_store.database, profile)
    expected = {
        "cameras": len(profile.cameras),
        "wards": len(profile.wards),
        "agencies": len(profile.agencies),
        "procedures": len(profile.procedures),
    }
    assert loaded == expected
    assert {table: _count(populated_store, table) for table in expected} == expected
    assert expected["cameras"] == 196 and expected["wards"] == 17


def test_cameras_carry_position_road_lanes_and_units(populated_store: Store) -> None:
    rows = populated_store.client.query(
        "SELECT camera_id, kind, ward, unit_2025, road, lat, lon, lanes "
        f"FROM {populated_store.database}.cameras"
    ).result_rows
    by_id = {row[0]: row for row in rows}
    profile = populated_store.profile
    for camera in profile.cameras:
        row = by_id[camera.camera_id]
        assert row[1:] == (
            camera.kind,
            camera.ward,
            profile.unit_of_ward[camera.ward],
            camera.road,
            camera.lat,
            camera.lon,
            camera.lanes,
        )


def test_prepare_store_on_the_embedded_engine(tmp_path: Path) -> None:
    """Its own process: chDB holds one store per process, and the fixture's is open."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTOPS_")}
    env |= {"VTOPS_DATA_DIR": str(tmp_path), "VTOPS_GRAFANA_CLICKHOUSE_PASSWORD": "pw"}
    done = subprocess.run(
        [VTOPS, "dashboards", "prepare-store"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cameras 196" in done.stdout and "embedded store: no users" in done.stdout
