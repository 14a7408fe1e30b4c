"""What /metrics reports, read from the engine's own counters at scrape time.

Nothing here runs per event: the stages already count every event in their partition state
(the same cumulative counters the checkpoint writes to `pipeline_progress`), the consumer knows
each partition's high-water mark, the checkpointer its last duration and end, and each sink its
retries. A scrape runs in the worker's event loop, between two batches, so it reads them
without locks.

A message counts as an event where its journey ends (streams/engine/route_stage.py): the
events of a re-keyed stream are counted by its window stage, on the re-key topic, except dead
letters, which its routing stage counts on the contract topic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sinks.base import BatchSink
from streams.engine.checkpoint import lag_of
from streams.engine.service import StreamEngine
from streams.health.exposition import Family

# (counter in the partition state, metric name, help)
_COUNTERS = (
    ("events", "vtops_events_in_total", "Messages read from the topic partition."),
    ("accepted", "vtops_events_accepted_total", "Events folded into an open window."),
    ("duplicates", "vtops_events_duplicate_total", "Events whose event_id was seen already."),
    ("late", "vtops_events_late_total", "Events whose window had closed (end plus grace)."),
    ("invalid", "vtops_events_invalid_total", "Messages sent to the dead-letter queue."),
)


def _partition_families(engine: StreamEngine) -> list[Family]:
    counters = {key: Family(name, "counter", note) for key, name, note in _COUNTERS}
    offset = Family("vtops_partition_offset", "gauge", "Offset of the last message folded.")
    lag = Family(
        "vtops_consumer_lag",
        "gauge",
        "Messages in the partition after the last one folded, by the consumer's high-water mark.",
    )
    windows = Family("vtops_open_windows", "gauge", "Windows held open in memory.")
    stream_time = Family(
        "vtops_stream_time_seconds", "gauge", "Latest event time seen (Unix seconds)."
    )
    for stage in engine.stages:
        for progress in stage.progress():
            labels = {
                "stream": progress.stream,
                "topic": progress.topic,
                "partition": str(progress.partition),
            }
            for key, family in counters.items():
                family.add(progress.counters[key], **labels)
            offset.add(progress.offset, **labels)
            behind = lag_of(engine.highwater(progress.topic, progress.partition), progress.offset)
            if behind is not None:
                lag.add(behind, **labels)
            windows.add(progress.open_windows, **labels)
            if progress.stream_time_ms is not None:
                stream_time.add(progress.stream_time_ms / 1000, **labels)
    return [*counters.values(), offset, lag, windows, stream_time]


def _worker_families(engine: StreamEngine, sinks: Sequence[BatchSink]) -> list[Family]:
    assigned = Family("vtops_assigned_partitions", "gauge", "Partitions this worker owns.")
    assigned.add(len(engine.assigned))
    ready = Family("vtops_ready", "gauge", "1 once partitions are assigned and state is loaded.")
    ready.add(int(engine.ready and not engine.failed))
    checkpointer = engine.checkpointer
    duration = Family(
        "vtops_checkpoint_duration_seconds", "gauge", "Write time of the last checkpoint."
    )
    duration.add(checkpointer.last_duration_ms / 1000)
    age = Family(
        "vtops_checkpoint_age_seconds",
        "gauge",
        "Seconds since the last checkpoint ended (one with nothing to write counts); absent "
        "before the first.",
    )
    if checkpointer.finished_at is not None:
        age.add(max(0.0, time.time() - checkpointer.finished_at))
    retries = Family(
        "vtops_sink_retries_total", "counter", "Batches retried after a transient sink error."
    )
    for sink in sinks:
        retries.add(sink.retries, sink=sink.name)
    return [assigned, ready, duration, age, retries]


def worker_metrics(engine: StreamEngine, sinks: Sequence[BatchSink]) -> list[Family]:
    """Every family of one scrape."""
    return _partition_families(engine) + _worker_families(engine, sinks)
