"""What the demo prints about traffic alerts, read back from the real embedded ClickHouse."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from city.profile import load_city_profile
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.settings import StorageSettings
from vtops.demo_summary import AlertLine, traffic_alerts

DATABASE = "vtops"
HOUR = datetime(2026, 11, 30, 8, tzinfo=load_city_profile().tz)


def test_alerts_of_the_hour_with_their_latest_write_in_city_time(tmp_path: Path) -> None:
    client = connect(StorageSettings(data_dir=tmp_path, clickhouse_url=None))
    try:
        migrate(client, DATABASE, timezone=load_city_profile().timezone)
        minute = timedelta(minutes=1)
        columns = ["alert_id", "camera_id", "ward", "kind", "severity", "first_anomalous_at",
                   "opened_at", "resolved_at", "observed", "expected", "score", "status",
                   "version"]  # fmt: skip
        rows = [
            # Opened, then resolved: FINAL shows the resolution.
            ["a", "VT-CAM-099", "phuong-1", "congestion", "warning", HOUR + 17 * minute,
             HOUR + 18 * minute, None, 18.0, 36.0, -5.0, "open", 1],
            ["a", "VT-CAM-099", "phuong-1", "congestion", "warning", HOUR + 17 * minute,
             HOUR + 18 * minute, HOUR + 39 * minute, 19.0, 36.0, -4.0, "resolved", 2],
            ["b", "VT-CAM-122", "phuong-2", "camera_offline", "warning", HOUR + 31 * minute,
             HOUR + 31 * minute, None, 120.0, 90.0, 1.3, "open", 1],
            # Before the hour: not this demo's.
            ["c", "VT-CAM-001", "phuong-3", "flow_drop", "warning", HOUR - 5 * minute,
             HOUR - 4 * minute, None, 1.0, 20.0, -6.0, "open", 1],
        ]  # fmt: skip
        client.insert(f"{DATABASE}.traffic_alerts", rows, column_names=columns)
        assert traffic_alerts(client, DATABASE, HOUR, HOUR + timedelta(hours=1)) == [
            AlertLine("congestion", "VT-CAM-099", "warning", "08:18:00", "08:39:00", 19.0, 36.0),
            AlertLine("camera_offline", "VT-CAM-122", "warning", "08:31:00", None, 120.0, 90.0),
        ]
    finally:
        client.close()
