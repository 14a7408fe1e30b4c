"""SQL of the pipeline health dashboard (read by `dashboards.pipeline` and by the tests).

`pipeline_progress` holds cumulative counters per source topic and partition at each
checkpoint, so an interval's events (or late events, duplicates) are the increase from the
partition's previous checkpoint: a window function over the rows, summed per bucket.
"""

from __future__ import annotations

from typing import Final

SOURCE: Final = "source_topic IN (${source:singlequote})"
SOURCE_VARIABLE: Final = """
    SELECT source_topic FROM (
      SELECT DISTINCT source_topic FROM {db}.pipeline_progress
      UNION DISTINCT
      SELECT DISTINCT source_topic FROM {db}.dlq_events)
    ORDER BY source_topic
"""
COUNTERS: Final = ("events", "accepted", "duplicates", "late", "invalid")

# Increase of each counter since the partition's previous checkpoint. The look-back before the
# range finds that previous checkpoint; a counter that went down (a reset) adds nothing.
_INCREASES: Final = ",\n             ".join(
    f"greatest(toInt64({c}) - toInt64(lagInFrame({c}, 1, {c}) OVER w), 0) AS d_{c}"
    for c in COUNTERS
)
DELTAS: Final = f"""
      SELECT recorded_at, source_topic, partition,
             {_INCREASES}
      FROM {{db}}.pipeline_progress FINAL
      WHERE recorded_at > $__fromTime - INTERVAL 15 MINUTE AND recorded_at <= $__toTime
        AND {SOURCE}
      WINDOW w AS (PARTITION BY source_topic, partition ORDER BY recorded_at, offset
                   ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
"""

EVENTS_NOW: Final = f"""
    SELECT round(sum(d_events) / 60, 1) AS events_per_second
    FROM ({DELTAS})
    WHERE recorded_at > $__toTime - INTERVAL 60 SECOND
"""

LAG_NOW: Final = f"""
    SELECT sum(partition_lag) AS consumer_lag FROM (
      SELECT source_topic, partition, argMax(lag, recorded_at) AS partition_lag
      FROM {{db}}.pipeline_progress
      WHERE recorded_at > $__toTime - INTERVAL 15 MINUTE AND recorded_at <= $__toTime
        AND {SOURCE}
      GROUP BY source_topic, partition)
"""

CHECKPOINT_AGE: Final = f"""
    SELECT dateDiff('second', max(recorded_at), $__toTime) AS seconds_since_checkpoint
    FROM {{db}}.pipeline_progress
    WHERE recorded_at > $__toTime - INTERVAL 1 DAY AND recorded_at <= $__toTime AND {SOURCE}
"""

SINK_NOW: Final = f"""
    SELECT round(quantile(0.95)(sink_ms)) AS sink_ms_p95
    FROM {{db}}.pipeline_progress
    WHERE recorded_at > $__toTime - INTERVAL 5 MINUTE AND recorded_at <= $__toTime AND {SOURCE}
"""

DLQ_NOW: Final = f"""
    SELECT count() AS dlq_messages
    FROM {{db}}.dlq_events FINAL
    WHERE received_at > $__toTime - INTERVAL 5 MINUTE AND received_at <= $__toTime AND {SOURCE}
"""

RANGE_COUNTS: Final = f"""
    SELECT sum(d_late) AS late_events, sum(d_duplicates) AS duplicates
    FROM ({DELTAS})
    WHERE $__timeFilter(recorded_at)
"""

EVENTS_RATE: Final = f"""
    SELECT $__timeInterval(recorded_at) AS time, source_topic,
           round(sum(d_events) / $__interval_s, 1) AS events_per_second
    FROM ({DELTAS})
    WHERE $__timeFilter(recorded_at)
    GROUP BY time, source_topic
    ORDER BY time, source_topic
"""

LATE_AND_DUPLICATES: Final = f"""
    SELECT $__timeInterval(recorded_at) AS time, source_topic,
           sum(d_late) AS late_events, sum(d_duplicates) AS duplicates,
           sum(d_invalid) AS invalid
    FROM ({DELTAS})
    WHERE $__timeFilter(recorded_at)
    GROUP BY time, source_topic
    ORDER BY time, source_topic
"""

DLQ_BY_SOURCE: Final = f"""
    SELECT $__timeInterval(received_at) AS time, source_topic, count() AS dlq_messages
    FROM {{db}}.dlq_events FINAL
    WHERE $__timeFilter(received_at) AND {SOURCE}
    GROUP BY time, source_topic
    ORDER BY time, source_topic
"""

# Reasons read "field: message (got value)": group by field and message with numbers
# folded, and leave the offending value out (it may be a plate or other personal data).
DLQ_REASONS: Final = rf"""
    SELECT source_topic, field, reason, count() AS dlq_messages,
           max(received_at) AS last_seen
    FROM (
      SELECT source_topic, received_at, splitByString(': ', error)[1] AS field,
             replaceRegexpAll(replaceRegexpOne(error, ' \\(got .*\\)$', ''), '[0-9]+', 'N')
               AS reason
      FROM {{db}}.dlq_events FINAL
      WHERE $__timeFilter(received_at) AND {SOURCE})
    GROUP BY source_topic, field, reason
    ORDER BY dlq_messages DESC, source_topic, field
    LIMIT 50
"""

SINK_OVER_TIME: Final = f"""
    SELECT $__timeInterval(recorded_at) AS time, source_topic,
           round(avg(sink_ms), 1) AS avg_sink_ms, round(max(sink_ms), 1) AS max_sink_ms
    FROM {{db}}.pipeline_progress FINAL
    WHERE $__timeFilter(recorded_at) AND {SOURCE}
    GROUP BY time, source_topic
    ORDER BY time, source_topic
"""


def latest_per_partition(column: str) -> str:
    """`column` at each partition's last checkpoint of the bucket, summed per topic."""
    return f"""
    SELECT time, source_topic, sum(partition_value) AS {column}
    FROM (
      SELECT $__timeInterval(recorded_at) AS time, source_topic, partition,
             argMax({column}, recorded_at) AS partition_value
      FROM {{db}}.pipeline_progress
      WHERE $__timeFilter(recorded_at) AND {SOURCE}
      GROUP BY time, source_topic, partition)
    GROUP BY time, source_topic
    ORDER BY time, source_topic
"""


# A partition's checkpoints are `checkpoint_interval_s` apart while the worker runs; a long
# gap is a worker that was down, stalled or waiting for its sinks (or input that stopped).
CHECKPOINT_GAPS: Final = f"""
    SELECT $__timeInterval(recorded_at) AS time, source_topic, round(max(gap_s), 1) AS longest_gap_s
    FROM (
      SELECT recorded_at, source_topic,
             dateDiff('millisecond', lagInFrame(recorded_at, 1, recorded_at) OVER w, recorded_at)
               / 1000 AS gap_s
      FROM {{db}}.pipeline_progress
      WHERE recorded_at > $__fromTime - INTERVAL 15 MINUTE AND recorded_at <= $__toTime
        AND {SOURCE}
      WINDOW w AS (PARTITION BY source_topic, partition ORDER BY recorded_at, offset
                   ROWS BETWEEN 1 PRECEDING AND CURRENT ROW))
    WHERE $__timeFilter(recorded_at)
    GROUP BY time, source_topic
    ORDER BY time, source_topic
"""

# Each partition at its last checkpoint, stalest first: which ones stopped moving.
PARTITIONS_NOW: Final = f"""
    SELECT source_topic, partition, max(recorded_at) AS last_checkpoint,
           dateDiff('second', max(recorded_at), $__toTime) AS seconds_since,
           argMax(offset, recorded_at) AS last_offset, argMax(lag, recorded_at) AS lag,
           argMax(open_windows, recorded_at) AS open_windows
    FROM {{db}}.pipeline_progress
    WHERE recorded_at > $__toTime - INTERVAL 1 DAY AND recorded_at <= $__toTime AND {SOURCE}
    GROUP BY source_topic, partition
    ORDER BY seconds_since DESC, source_topic, partition
"""
