"""What /metrics reports: a prometheus_client collector that reads the engine at scrape time.

Nothing here runs per event: the stages already count every event in their partition state
(streams/engine/tally.py turns those into what this process counted), the consumer knows each
partition's high-water mark, the checkpointer its durations and last end, and each sink its
retries. A scrape runs in the worker's event loop, between two batches, so it reads them
without locks. The registry adds the process' own metrics (memory, CPU, open files) and
`vtops_build_info`.

Per topic partition, `vtops_events_in_total` counts the messages read and every one of them
ends in one outcome: accepted, duplicate, late, invalid (dead-lettered), recorded (kept
outside any window: camera status reports) or forwarded (re-keyed by a routing stage to its
stream's by-group topic, where it is read again).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from sinks.base import BatchSink
from streams.engine.checkpoint import lag_of
from streams.engine.service import StreamEngine

_LABELS = ["stream", "topic", "partition"]

# (counter of the partition's progress, metric name without _total, help)
_COUNTERS = (
    ("events", "vtops_events_in", "Messages read from the topic partition by this process."),
    ("accepted", "vtops_events_accepted", "Events folded into an open window."),
    ("duplicates", "vtops_events_duplicate", "Events whose event_id was seen already."),
    ("late", "vtops_events_late", "Events whose window had closed (end plus grace)."),
    ("invalid", "vtops_events_invalid", "Messages sent to the dead-letter queue."),
    ("recorded", "vtops_events_recorded", "Messages kept as records outside any window."),
    ("forwarded", "vtops_events_forwarded", "Events re-keyed to the stream's by-group topic."),
    (
        "ahead",
        "vtops_events_ahead",
        "Events whose producer (camera, terminal, dossier) ran ahead of its partition's others "
        "by more than the lead bound.",
    ),
)


def _package_version() -> str:
    try:
        return version("vungtau-ops")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class WorkerCollector(Collector):
    def __init__(self, engine: StreamEngine, sinks: Sequence[BatchSink]) -> None:
        self._engine = engine
        self._sinks = list({id(sink): sink for sink in sinks}.values())
        self._version = _package_version()

    def collect(self) -> Iterator[Metric]:
        build = InfoMetricFamily("vtops_build", "The running package's version.")
        build.add_metric([], {"version": self._version})
        yield build
        yield from self._partitions()
        yield from self._worker()

    def _partitions(self) -> Iterator[Metric]:
        engine = self._engine
        counters = {
            key: CounterMetricFamily(name, note, labels=_LABELS) for key, name, note in _COUNTERS
        }
        offset = GaugeMetricFamily(
            "vtops_partition_offset", "Offset of the last message folded.", labels=_LABELS
        )
        lag = GaugeMetricFamily(
            "vtops_consumer_lag",
            "Messages in the partition after the last one folded, by the consumer's high-water "
            "mark.",
            labels=_LABELS,
        )
        windows = GaugeMetricFamily(
            "vtops_open_windows", "Windows held open in memory.", labels=_LABELS
        )
        stream_time = GaugeMetricFamily(
            "vtops_stream_time_seconds", "Latest event time seen (Unix seconds).", labels=_LABELS
        )
        for stage in engine.stages:
            for progress in stage.progress():
                labels = [progress.stream, progress.topic, str(progress.partition)]
                for key, value in progress.counted.items():
                    counters[key].add_metric(labels, value)
                offset.add_metric(labels, progress.offset)
                hw = engine.highwater(progress.topic, progress.partition)
                behind = lag_of(hw, progress.offset)
                if behind is not None:
                    lag.add_metric(labels, behind)
                windows.add_metric(labels, progress.open_windows)
                if progress.stream_time_ms is not None:
                    stream_time.add_metric(labels, progress.stream_time_ms / 1000)
        yield from counters.values()
        yield from (offset, lag, windows, stream_time)

    def _worker(self) -> Iterator[Metric]:
        engine = self._engine
        yield GaugeMetricFamily(
            "vtops_assigned_partitions", "Partitions this worker owns.", len(engine.assigned)
        )
        yield GaugeMetricFamily(
            "vtops_ready",
            "1 once partitions are assigned and state is loaded.",
            int(engine.ready and not engine.failed),
        )
        durations = engine.checkpointer.durations
        yield HistogramMetricFamily(
            "vtops_checkpoint_duration_seconds",
            "Write time of the checkpoints that had something to write.",
            buckets=durations.cumulative(),
            sum_value=durations.total_s,
        )
        last = GaugeMetricFamily(
            "vtops_last_checkpoint_timestamp_seconds",
            "When the last checkpoint ended (Unix seconds; one with nothing to write counts); "
            "absent before the first. Its age: time() minus it.",
        )
        finished_at = engine.checkpointer.finished_at
        if finished_at is not None:
            last.add_metric([], finished_at)
        yield last
        retries = CounterMetricFamily(
            "vtops_sink_retries",
            "Batches retried after a transient sink error.",
            labels=["sink"],
        )
        for sink in self._sinks:
            retries.add_metric([sink.name], sink.retries)
        yield retries


def worker_registry(engine: StreamEngine, sinks: Sequence[BatchSink]) -> CollectorRegistry:
    """Every metric of one worker: its own, the process', the build's."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(WorkerCollector(engine, sinks))
    return registry
