"""The offline rules: `camera_offline` for a camera with no sign of life for `offline_after_ms`,
and `site_offline` for many of a partition's cameras at once (inhibiting theirs). They need no
baseline, so they work from a camera's first minute; judged on every tick of the watch."""

from __future__ import annotations

from streams.engine.definition import Records
from streams.traffic.anomaly.alerts import PARTITION_WIDE, About, Evidence, Finding, is_open
from streams.traffic.anomaly.rules import Judge
from streams.traffic.anomaly.state import CameraWatch, WatchState


def judge_offline(
    judge: Judge, watch: WatchState, cameras: list[CameraWatch], now: int, records: Records
) -> None:
    rules, alerts = judge.rules, judge.alerts
    partition = About(PARTITION_WIDE, watch.partition.incidents, records, watch.name)
    quiet = [c for c in cameras if now - c.alive_ms >= rules.offline_after_ms]
    site = len(quiet) >= rules.site_min_cameras and len(quiet) >= rules.site_share * len(cameras)
    evidence = Evidence(len(quiet), len(cameras), len(quiet) / max(len(cameras), 1), 0.0)
    if site:
        first = min(c.alive_ms for c in quiet) + rules.offline_after_ms
        alerts.raise_(partition, Finding("site_offline", now, first, evidence, "critical"))
    else:
        alerts.clear(partition, "site_offline", now, at_once=True)
    quiet_ids = {camera.camera_id for camera in quiet}
    for camera in cameras:
        about = About(camera.camera_id, camera.incidents, records)
        if camera.camera_id not in quiet_ids:
            if is_open(camera.incidents, "camera_offline"):  # held open while flapping
                alerts.clear(about, "camera_offline", now)
            continue
        if site:
            continue  # one site alert stands for them all
        silent_s = (now - camera.alive_ms) / 1000
        limit_s = rules.offline_after_ms / 1000
        alerts.raise_(
            about,
            Finding(
                "camera_offline",
                now,
                camera.alive_ms + rules.offline_after_ms,
                Evidence(silent_s, limit_s, silent_s / limit_s, silent_s / limit_s),
                "critical" if camera.status == "tampered" else "warning",
            ),
        )
