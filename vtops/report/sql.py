"""SQL of the report that no dashboard panel has, built from the panels' own expressions.

Written as the panels are (`{db}` and `{tz}` for the store and the city, Grafana macros and
`${var:singlequote}` variables, expanded by `dashboards.macros`), so that one context runs
both. Where a panel shows the same thing,
`queries` runs the panel's SQL itself; these are the report's other views: totals over the
period instead of rates over time, city days instead of the epoch-aligned buckets of
`$__timeInterval` (which start at UTC midnight, not the city's), and counts by stream time.
"""

from __future__ import annotations

from typing import Final

from dashboards import cashless, traffic_sql

FLOW_IN_PERIOD: Final = "$__timeFilter(window_start) AND " + traffic_sql.SELECTION
PERIOD_END: Final = "($__toTime + INTERVAL 1 SECOND)"


def cashless_trend(bucket: str) -> str:
    """The city's cashless share per hour or city day (`toStartOfHour`, `toStartOfDay`)."""
    return f"""
    SELECT {bucket}(window_start) AS time, {cashless.SHARE} AS cashless_share
    FROM {{db}}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start) AND {cashless.SELECTION}
    GROUP BY time
    ORDER BY time
"""


FLOW_BY_WARD: Final = f"""
    SELECT ward, sum(vehicles) AS vehicles, round(sum(pcu), 1) AS pcu,
           sum(violations) AS violations
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE {FLOW_IN_PERIOD}
    GROUP BY ward
"""

# An average day of the period, hour by hour: each hour's sum over the days that had data in
# that hour, so a period that starts at 09:00 does not halve its morning.
_DAYS_PER_HOUR: Final = f"""
      SELECT toHour(window_start) AS hour, uniqExact(toDate(window_start)) AS days
      FROM {{db}}.traffic_flow_1m FINAL
      WHERE {FLOW_IN_PERIOD}
      GROUP BY hour"""

FLOW_BY_HOUR: Final = f"""
    SELECT f.hour AS hour, round(f.vehicles / d.days, 1) AS vehicles_per_day,
           round(f.pcu / d.days, 1) AS pcu_per_day
    FROM (
      SELECT toHour(window_start) AS hour, sum(vehicles) AS vehicles, sum(pcu) AS pcu
      FROM {{db}}.traffic_flow_1m FINAL
      WHERE {FLOW_IN_PERIOD}
      GROUP BY hour) AS f
    INNER JOIN ({_DAYS_PER_HOUR}) AS d ON d.hour = f.hour
    ORDER BY hour
"""

FLOW_BY_WARD_AND_HOUR: Final = f"""
    SELECT f.ward AS ward, f.hour AS hour, round(f.vehicles / d.days, 1) AS vehicles_per_day
    FROM (
      SELECT ward, toHour(window_start) AS hour, sum(vehicles) AS vehicles
      FROM {{db}}.traffic_flow_1m FINAL
      WHERE {FLOW_IN_PERIOD}
      GROUP BY ward, hour) AS f
    INNER JOIN ({_DAYS_PER_HOUR}) AS d ON d.hour = f.hour
"""

# Roads come from the city profile (parameters), so a road with several cameras is one row.
# Its sums are not called `vehicles`: that alias would replace the column inside the speed's.
BUSIEST_ROADS: Final = f"""
    SELECT transform(camera_id, {{cameras:Array(String)}}, {{roads:Array(String)}}, '?') AS road,
           sum(vehicles) AS road_vehicles, round(sum(pcu), 1) AS road_pcu,
           {traffic_sql.WEIGHTED_SPEED} AS avg_speed_kmh
    FROM {{db}}.traffic_flow_1m FINAL
    WHERE {FLOW_IN_PERIOD}
    GROUP BY road
    ORDER BY road_vehicles DESC, road
    LIMIT 10
"""

# Alerts open at any time in the period, each with its time inside the period.
_ALERTS: Final = f"""
      SELECT kind, camera_id, ward, severity, opened_at, resolved_at, status,
             dateDiff('second', greatest(opened_at, $__fromTime),
                      least(coalesce(resolved_at, {PERIOD_END}), {PERIOD_END})) AS seconds
      FROM {{db}}.traffic_alerts_merged
      WHERE opened_at < {PERIOD_END} AND coalesce(resolved_at, {PERIOD_END}) > $__fromTime"""

# Where: the three cameras with most alerts of the kind, ties by name (topK's order is not
# stable, and the page must not change between two readings of the same rows).
ALERTS_BY_KIND: Final = f"""
    SELECT kind, sum(camera_alerts) AS alerts, sum(camera_open) AS still_open,
           sum(camera_seconds) AS total_seconds, max(camera_longest) AS longest_seconds,
           arraySlice(arraySort((camera, n) -> (-toInt64(n), camera),
                                groupArray(camera_id), groupArray(camera_alerts)), 1, 3)
             AS where_most
    FROM (
      SELECT kind, camera_id, count() AS camera_alerts, countIf(status = 'open') AS camera_open,
             sum(seconds) AS camera_seconds, max(seconds) AS camera_longest
      FROM ({_ALERTS})
      GROUP BY kind, camera_id)
    GROUP BY kind
    ORDER BY alerts DESC, kind
"""

LONGEST_ALERTS: Final = f"""
    SELECT kind, camera_id, ward, severity, opened_at, resolved_at, seconds
    FROM ({_ALERTS})
    ORDER BY seconds DESC, opened_at, camera_id, kind
    LIMIT 10
"""

CAMERAS_OFFLINE_LONGEST: Final = f"""
    SELECT camera_id, any(ward) AS camera_ward, count() AS times,
           sum(seconds) AS offline_seconds
    FROM ({_ALERTS})
    WHERE kind = 'camera_offline'
    GROUP BY camera_id
    ORDER BY offline_seconds DESC, camera_id
    LIMIT 10
"""

# Each checkpoint's increase of a partition's counters (the first counts from zero), given to
# the period its stream time fell in: the event time the partition had reached when it
# counted them. pipeline_progress is stamped with wall-clock time, which a report of a past
# week replayed today would miss.
STREAM_COUNTS: Final = """
    SELECT source_topic, sum(d_events) AS events, sum(d_invalid) AS dead_letters,
           sum(d_late) AS late
    FROM (
      SELECT source_topic, stream_time,
             greatest(toInt64(events) - toInt64(lagInFrame(events, 1, 0) OVER w), 0)
               AS d_events,
             greatest(toInt64(invalid) - toInt64(lagInFrame(invalid, 1, 0) OVER w), 0)
               AS d_invalid,
             greatest(toInt64(late) - toInt64(lagInFrame(late, 1, 0) OVER w), 0) AS d_late
      FROM {db}.pipeline_progress FINAL
      WHERE source_topic IN {topics:Array(String)}
      WINDOW w AS (PARTITION BY source_topic, partition ORDER BY recorded_at, offset
                   ROWS BETWEEN 1 PRECEDING AND CURRENT ROW))
    WHERE $__timeFilter(stream_time)
    GROUP BY source_topic
"""

# The buckets of the period that have at least one row, per output table: the rest is a gap.
PRESENT: Final = {
    "traffic": """
    SELECT DISTINCT toStartOfMinute(window_start) FROM {db}.traffic_flow_1m FINAL
    WHERE $__timeFilter(window_start)""",
    "payments": """
    SELECT DISTINCT window_start FROM {db}.payments_cashless_1h FINAL
    WHERE $__timeFilter(window_start)""",
    "portal": """
    SELECT DISTINCT toDateTime(day, '{tz}') FROM {db}.portal_kpis_1d FINAL
    WHERE $__dateFilter(day)""",
}
