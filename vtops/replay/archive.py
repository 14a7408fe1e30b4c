"""Archives of the input topics: the messages of a time range in a Parquet file (zstd).

A row is one message as the broker held it: the contract topic (without the run's prefix, so an
archive loads into any environment), partition, offset, timestamp, key, value and headers. The
file's metadata says where it came from and what it holds (`ArchiveInfo`). Rows of one
partition sit together in offset order, in row groups of their own, so that an import reads
the file a row group per partition at a time (vtops/replay/archive_import.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from kafka import TopicPartition

from city.settings import KafkaSettings
from vtops.replay.event_times import locate
from vtops.replay.exceptions import ReplayError
from vtops.replay.positions import records_between, retained_ranges
from vtops.replay.selection import StreamTopics
from vtops.replay.times import Clock

FORMAT = "2"  # 1: no metadata beyond the format; 2: `vtops.info`
SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("headers", pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))),
    ],
    metadata={"vtops.archive": FORMAT},
)
INFO_KEY = "vtops.info"
# Rows per row group: an import holds one row group per partition in memory.
_ROW_GROUP = 10_000

Progress = Callable[[int], None]


@dataclass
class ArchiveCounts:
    """Messages per contract topic."""

    by_topic: dict[str, int] = field(default_factory=dict)

    def add(self, topic: str, n: int) -> None:
        self.by_topic[topic] = self.by_topic.get(topic, 0) + n

    @property
    def total(self) -> int:
        return sum(self.by_topic.values())


@dataclass(frozen=True)
class ArchiveInfo:
    """What an archive holds and where it came from (format 2 on)."""

    source_prefix: str  # VTOPS_TOPIC_PREFIX of the environment it was exported from
    source_app_id: str
    source_bootstrap: str
    from_time: str  # the range asked for, ISO 8601, and the clock it was read in
    to_time: str
    clock: str
    counts: dict[str, int]  # messages per contract topic
    release: str  # the vtops release that wrote it
    exported_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class ExportPlan:
    """Each input partition's offsets [start, stop) for the range."""

    contract: dict[str, str]  # broker-side topic -> contract topic
    starts: dict[TopicPartition, int]
    stops: dict[TopicPartition, int]

    @property
    def total(self) -> int:
        return sum(max(0, self.stops[tp] - self.starts[tp]) for tp in self.starts)


def plan_export(
    kafka: KafkaSettings,
    streams: list[StreamTopics],
    from_ms: int,
    to_ms: int,
    clock: Clock,
    max_clock_skew_s: int,
) -> ExportPlan:
    """From the first message whose time (by `clock`) is at or after `from_ms` up to the first
    at or after `to_ms`, on every input partition of the streams."""
    if to_ms <= from_ms:
        raise ReplayError("--to: must be after --from")
    contract = {s.source: s.stream.source_topic for s in streams}
    ranges = retained_ranges(kafka, list(contract))
    starts = locate(kafka, streams, ranges, from_ms, clock, max_clock_skew_s).offsets
    stops = locate(kafka, streams, ranges, to_ms, clock, max_clock_skew_s).offsets
    return ExportPlan(contract, starts, stops)


def write_archive(
    kafka: KafkaSettings,
    plan: ExportPlan,
    asked: tuple[str, str, Clock],
    out: Path,
    progress: Progress | None = None,
) -> ArchiveCounts:
    """Write the plan's messages to `out`; `asked`: the range as given, and its clock."""
    counts = ArchiveCounts()
    with pq.ParquetWriter(out, SCHEMA, compression="zstd") as writer:
        for tp in sorted(plan.starts):
            start, stop = plan.starts[tp], plan.stops[tp]
            if start >= stop:
                continue
            topic = plan.contract[tp.topic]
            for rows in _row_groups(kafka, tp, start, stop, topic):
                writer.write_table(pa.Table.from_pydict(rows, schema=SCHEMA))
                counts.add(topic, len(rows["offset"]))
                if progress is not None:
                    progress(len(rows["offset"]))
        info = ArchiveInfo(
            kafka.topic_prefix,
            kafka.app_id,
            kafka.kafka_bootstrap,
            asked[0],
            asked[1],
            asked[2].value,
            counts.by_topic,
            package_version("vungtau-ops"),
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        writer.add_key_value_metadata({INFO_KEY: info.to_json()})
    return counts


def read_info(path: Path) -> ArchiveInfo | None:
    """The archive's metadata; None for a format-1 archive (which has none)."""
    metadata = pq.ParquetFile(path).metadata.metadata or {}
    raw = metadata.get(INFO_KEY.encode())
    return None if raw is None else ArchiveInfo(**json.loads(raw))


def _row_groups(
    kafka: KafkaSettings, tp: TopicPartition, start: int, stop: int, topic: str
) -> Iterator[dict[str, list[Any]]]:
    rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for record in records_between(kafka, tp, start, stop):
        rows["topic"].append(topic)
        rows["partition"].append(tp.partition)
        rows["offset"].append(record.offset)
        rows["timestamp"].append(record.timestamp)
        rows["key"].append(record.key)
        rows["value"].append(record.value)
        rows["headers"].append([{"key": k, "value": v} for k, v in record.headers or ()])
        if len(rows["offset"]) >= _ROW_GROUP:
            yield rows
            rows = {name: [] for name in SCHEMA.names}
    if rows["offset"]:
        yield rows
