"""The worker's own account of its speed: `pipeline_progress` rows turned into a steady rate.

Pure arithmetic, apart from the ClickHouse read. The worker writes one row per partition per
checkpoint (about every second) with the partition's cumulative `events`, its last `offset`
and `recorded_at`, all stamped when the checkpoint's cut is taken (the engine writes the cut
while it goes on folding; `sink_ms` is how long the previous checkpoint's writes took). Summed
over partitions the points give a curve of events against time; the steady rate is its slope
between the first cut (startup is over, events are flowing) and the last cut at which some
partition still had messages left (so no idle tail after the catch-up is counted).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

# The rows of one checkpoint are stamped within microseconds of each other; checkpoints are
# about a second apart (or closer under backpressure, still far more than this).
SAME_CHECKPOINT_S = 0.05

PROGRESS_SQL = """
    SELECT partition, offset, events, toUnixTimestamp64Milli(recorded_at), sink_ms
    FROM {database:Identifier}.pipeline_progress
    WHERE source_topic = {topic:String}
    ORDER BY recorded_at, partition"""


@dataclass(frozen=True)
class ProgressRow:
    partition: int
    offset: int  # last offset the worker folded in this partition
    events: int  # cumulative events of the partition
    recorded_at_s: float  # epoch seconds of the checkpoint's cut
    sink_ms: float  # how long the previous checkpoint's writes took


@dataclass(frozen=True)
class Checkpoint:
    at_s: float  # epoch seconds of the cut
    events: int  # cumulative over every partition
    behind: bool  # some partition still had messages to read after this checkpoint


def read_progress(client: Client, database: str, topic: str) -> list[ProgressRow]:
    result = client.query(PROGRESS_SQL, parameters={"database": database, "topic": topic})
    return [
        ProgressRow(int(partition), int(offset), int(events), int(at_ms) / 1000, float(sink_ms))
        for partition, offset, events, at_ms, sink_ms in result.result_rows
    ]


def checkpoints(rows: Iterable[ProgressRow], end_offsets: Mapping[int, int]) -> list[Checkpoint]:
    """Checkpoints in time order; a partition absent from a checkpoint keeps its last values.

    `end_offsets` maps partition to the topic's end offset (the offset the next message would
    get), known from the fill: the input does not grow while the worker reads it.
    """
    events: dict[int, int] = {}
    offsets = {partition: -1 for partition in end_offsets}
    points: list[Checkpoint] = []
    group: list[ProgressRow] = []
    for row in sorted(rows, key=lambda r: (r.recorded_at_s, r.partition)):
        if group and row.recorded_at_s - group[0].recorded_at_s > SAME_CHECKPOINT_S:
            points.append(_point(group, events, offsets, end_offsets))
            group = []
        group.append(row)
        events[row.partition] = row.events
        offsets[row.partition] = row.offset
    if group:
        points.append(_point(group, events, offsets, end_offsets))
    return points


def _point(
    group: Sequence[ProgressRow],
    events: Mapping[int, int],
    offsets: Mapping[int, int],
    ends: Mapping[int, int],
) -> Checkpoint:
    behind = any(offsets.get(partition, -1) < end - 1 for partition, end in ends.items())
    return Checkpoint(min(row.recorded_at_s for row in group), sum(events.values()), behind)


def steady_rate(points: Sequence[Checkpoint]) -> float | None:
    """Events per second from the first checkpoint to the last one still behind the end.

    When only the first checkpoint was behind (a run too short to measure well), the span runs
    to the next checkpoint, idle tail included. None with fewer than two checkpoints.
    """
    if len(points) < 2:
        return None
    last = max((i for i, point in enumerate(points) if point.behind), default=0)
    last = max(last, 1)
    span = points[last].at_s - points[0].at_s
    if span <= 0:
        return None
    return (points[last].events - points[0].events) / span


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that were measured; None if none was."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
