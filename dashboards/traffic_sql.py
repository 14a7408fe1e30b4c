"""SQL of the traffic operations dashboard (read by `dashboards.traffic` and by the tests).

Every query reads the upsert tables with FINAL, filters on the `ward` and `camera` variables
through `${var:singlequote}` (All expands to every value), and takes "now" from the time
picker (`$__toTime`) rather than the clock, so a dashboard scrolled back in time shows the
city as it was then.
"""

from __future__ import annotations

from typing import Final, get_args

from schemas.camera import ViolationType

# Volume-to-capacity: a lane carries about 1,800 PCU an hour (HCM 2010 base saturation flow
# is 1,900 per green hour; TCVN 4054 urban lanes 1,500-1,800). The profile has lanes per camera.
LANE_CAPACITY_PCU_PER_HOUR: Final = 1800
NOW_MINUTES: Final = 5

SELECTION: Final = "ward IN (${ward:singlequote}) AND camera_id IN (${camera:singlequote})"
NOW_WINDOWS: Final = (
    f"window_start > $__toTime - INTERVAL {NOW_MINUTES} MINUTE AND window_start <= $__toTime"
)
# Buckets of at least one minute (the table's grain), so rates stay per minute at any zoom.
BUCKET: Final = "toStartOfInterval(window_start, toIntervalSecond(greatest($__interval_s, 60)))"
PER_MINUTE: Final = "(greatest($__interval_s, 60) / 60)"

WARD_VARIABLE: Final = "SELECT ward, name FROM {db}.wards ORDER BY ward"
CAMERA_VARIABLE: Final = """
    SELECT camera_id, concat(camera_id, ' · ', road) FROM {db}.cameras
    WHERE ward IN (${ward:singlequote}) ORDER BY camera_id
"""

VEHICLES_NOW: Final = f"""
    SELECT sum(vehicles) AS vehicles
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE {NOW_WINDOWS} AND {SELECTION}
"""

PCU_NOW: Final = f"""
    SELECT round(sum(pcu) / {NOW_MINUTES}, 1) AS pcu_per_minute
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE {NOW_WINDOWS} AND {SELECTION}
"""

# avg_speed_kmh is a mean over the passages that carried a speed: weight it by vehicles.
WEIGHTED_SPEED: Final = (
    "round(sumIf(avg_speed_kmh * vehicles, avg_speed_kmh IS NOT NULL)"
    " / nullIf(sumIf(vehicles, avg_speed_kmh IS NOT NULL), 0), 1)"
)

SPEED_NOW: Final = f"""
    SELECT {WEIGHTED_SPEED} AS avg_speed_kmh
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE window_start > $__toTime - INTERVAL 15 MINUTE AND window_start <= $__toTime
      AND {SELECTION}
"""

OPEN_ALERTS_COUNT: Final = f"""
    SELECT countIf(severity = 'critical') AS critical, countIf(severity = 'warning') AS warning
    FROM {{db}}.traffic_alerts_merged
    WHERE status = 'open' AND {SELECTION}
"""

VIOLATIONS_COUNT: Final = f"""
    SELECT count() AS violations
    FROM {{db}}.traffic_violations FINAL
    WHERE $__timeFilter(ts) AND {SELECTION}
"""

# One row per camera of the selection: its last reported status, its last flow minute and a
# verdict. A camera that reported offline/tampered after its last flow is that; one with
# neither a flow row nor a status for $silent_minutes has gone silent.
CAMERA_HEALTH: Final = """
    WITH
      status AS (
        SELECT camera_id, argMax(status, ts) AS last_status, max(ts) AS last_status_at
        FROM {db}.camera_status
        WHERE ts > $__toTime - INTERVAL 7 DAY AND ts <= $__toTime
        GROUP BY camera_id),
      flow AS (
        SELECT camera_id, max(window_start) AS last_flow_at
        FROM {db}.traffic_flow_1m
        WHERE window_start > $__toTime - INTERVAL 1 DAY AND window_start <= $__toTime
        GROUP BY camera_id)
    SELECT c.camera_id AS camera_id, c.ward AS ward, c.road AS road, c.kind AS kind,
           -- coalesce: right whether the server fills unmatched joins with defaults or NULLs
           coalesce(s.last_status_at, toDateTime64(0, 3)) AS status_at,
           coalesce(f.last_flow_at, toDateTime(0)) AS flow_at,
           nullIf(s.last_status, '') AS last_status,
           nullIf(status_at, toDateTime64(0, 3)) AS last_status_at,
           nullIf(flow_at, toDateTime(0)) AS last_flow_at,
           multiIf(
             last_status IN ('offline', 'tampered') AND status_at >= flow_at, last_status,
             greatest(status_at, flow_at) <= $__toTime - INTERVAL $silent_minutes MINUTE,
               'silent',
             last_status = 'degraded', 'degraded',
             'ok') AS health
    FROM {db}.cameras AS c
    LEFT JOIN status AS s ON s.camera_id = c.camera_id
    LEFT JOIN flow AS f ON f.camera_id = c.camera_id
    WHERE c.ward IN (${ward:singlequote}) AND c.camera_id IN (${camera:singlequote})
"""

CAMERAS_SILENT: Final = f"""
    SELECT countIf(health = 'silent') AS silent,
           countIf(health IN ('offline', 'tampered')) AS offline
    FROM ({CAMERA_HEALTH})
"""

CAMERAS_NEEDING_ATTENTION: Final = f"""
    SELECT health, camera_id AS camera, ward, road, kind, last_status, last_status_at,
           last_flow_at
    FROM ({CAMERA_HEALTH})
    WHERE health != 'ok'
    ORDER BY indexOf(['tampered', 'offline', 'silent', 'degraded'], health), camera
"""

CAMERAS_BY_HEALTH: Final = f"""
    SELECT health, count() AS cameras
    FROM ({CAMERA_HEALTH})
    GROUP BY health
    ORDER BY indexOf(['ok', 'degraded', 'silent', 'offline', 'tampered'], health)
"""

CAMERA_MAP: Final = f"""
    WITH flow AS (
      SELECT camera_id, sum(vehicles) AS vehicles, sum(pcu) / {NOW_MINUTES} AS pcu_per_minute
      FROM {{db}}.traffic_flow_1m FINAL
      WHERE {NOW_WINDOWS}
      GROUP BY camera_id)
    SELECT c.camera_id AS camera_id, c.road AS road, c.ward AS ward, c.kind AS kind,
           c.lanes AS lanes, c.lat AS latitude, c.lon AS longitude,
           f.vehicles AS vehicles_5min, round(f.pcu_per_minute, 1) AS pcu_per_minute,
           if(f.camera_id = '', NULL,
              round(100 * f.pcu_per_minute * 60 / (c.lanes * {LANE_CAPACITY_PCU_PER_HOUR}), 1))
             AS saturation_pct
    FROM {{db}}.cameras AS c
    LEFT JOIN flow AS f ON f.camera_id = c.camera_id
    WHERE c.ward IN (${{ward:singlequote}}) AND c.camera_id IN (${{camera:singlequote}})
    ORDER BY camera_id
"""

OPEN_ALERTS: Final = f"""
    SELECT a.opened_at AS opened_at, a.severity AS severity, a.kind AS kind,
           a.camera_id AS camera, c.road AS road, a.ward AS ward,
           round(a.observed, 1) AS observed, round(a.expected, 1) AS expected,
           round(a.ratio, 2) AS ratio, round(a.score, 2) AS score,
           a.first_anomalous_at AS since, a.updated_at AS updated, a.reopens AS reopens,
           a.flapping AS flapping
    FROM (SELECT * FROM {{db}}.traffic_alerts_merged WHERE status = 'open' AND {SELECTION}) AS a
    LEFT JOIN {{db}}.cameras AS c ON c.camera_id = a.camera_id
    ORDER BY indexOf(['critical', 'warning', 'info'], a.severity), a.opened_at DESC
    LIMIT 100
"""


def flow_by(label: str, measure: str) -> str:
    """Per-minute rate of `measure` (vehicles or pcu) per ward or per camera over time."""
    top = ""
    if label == "camera_id":
        # 196 lines help nobody: the ten busiest cameras of the selection.
        top = f"""
      AND camera_id IN (
        SELECT camera_id FROM {{db}}.traffic_flow_1m FINAL
        WHERE $__timeFilter(window_start) AND {SELECTION}
        GROUP BY camera_id ORDER BY sum(vehicles) DESC LIMIT 10)"""
    return f"""
    SELECT {BUCKET} AS time, {label},
           round(sum({measure}) / {PER_MINUTE}, 1) AS {measure}_per_minute
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE $__timeFilter(window_start) AND {SELECTION}{top}
    GROUP BY time, {label}
    ORDER BY time, {label}
"""


SPEED_BY_WARD: Final = f"""
    SELECT {BUCKET} AS time, ward, {WEIGHTED_SPEED} AS avg_speed_kmh
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE $__timeFilter(window_start) AND {SELECTION}
    GROUP BY time, ward
    ORDER BY time, ward
"""

_CLASSES: Final = ("motorbike", "car", "bus", "truck", "bicycle", "other")
_CLASS_SUMS: Final = ", ".join(f"sum({c}) AS {c}" for c in _CLASSES)

CLASS_MIX: Final = f"""
    SELECT {_CLASS_SUMS}
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE $__timeFilter(window_start) AND {SELECTION}
"""

CLASS_MIX_OVER_TIME: Final = f"""
    SELECT {BUCKET} AS time, {_CLASS_SUMS}
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE $__timeFilter(window_start) AND {SELECTION}
    GROUP BY time
    ORDER BY time
"""

VIOLATION_TYPES: Final[tuple[str, ...]] = get_args(ViolationType)

VIOLATIONS_BY_TYPE: Final = f"""
    SELECT $__timeInterval(ts) AS time, violation_type, count() AS violations
    FROM {{db}}.traffic_violations FINAL
    WHERE $__timeFilter(ts) AND {SELECTION}
    GROUP BY time, violation_type
    ORDER BY time, violation_type
"""

_BY_TYPE: Final = ", ".join(f"countIf(violation_type = '{t}') AS {t}" for t in VIOLATION_TYPES)

VIOLATIONS_BY_CAMERA: Final = f"""
    SELECT v.camera_id AS camera, c.road AS road, v.camera_ward AS ward,
           v.violations AS violations,
           {", ".join(f"v.{t} AS {t}" for t in VIOLATION_TYPES)}
    FROM (
      SELECT camera_id, any(ward) AS camera_ward, count() AS violations, {_BY_TYPE}
      FROM {{db}}.traffic_violations FINAL
      WHERE $__timeFilter(ts) AND {SELECTION}
      GROUP BY camera_id) AS v
    LEFT JOIN {{db}}.cameras AS c ON c.camera_id = v.camera_id
    ORDER BY violations DESC, camera
    LIMIT 20
"""
