"""Pipeline health: is data flowing, is it clean, and is it keeping up?

Thresholds come from the contract and the targets: results land within 30 s, a sink write
takes at most the flush interval plus 2 s, consumer lag must not keep growing.
"""

from __future__ import annotations

from typing import Final

from dashboards.layout import Layout, dashboard
from dashboards.panels import (
    JSON,
    field_config,
    override,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)
from dashboards.pipeline_sql import (
    CHECKPOINT_AGE,
    CHECKPOINT_GAPS,
    DLQ_BY_SOURCE,
    DLQ_NOW,
    DLQ_REASONS,
    EVENTS_NOW,
    EVENTS_RATE,
    LAG_NOW,
    LATE_AND_DUPLICATES,
    PARTITIONS_NOW,
    RANGE_COUNTS,
    SINK_NOW,
    SINK_OVER_TIME,
    SOURCE_VARIABLE,
    latest_per_partition,
)

UID = "vtops-pipeline"
# DLQ messages in five minutes that page someone (alert rule and the stat's red step).
DLQ_SURGE_THRESHOLD: Final = 100
# Contract: within 30 s after input stops, the latest state is in ClickHouse.
CHECKPOINT_STALE_S: Final = 30
# Targets P4: the sink may take the flush interval plus 2 s at most.
SINK_SLOW_MS: Final = 2000
LAG_HIGH: Final = 100_000
# The alert "no checkpoint" fires after this long without a `pipeline_progress` row: a worker
# restarts in seconds, and a rebalance or a slow sink takes well under a minute.
NO_CHECKPOINT_MINUTES: Final = 5


def _named_by_topic(unit: str = "short") -> JSON:
    """One series per topic, named by the topic alone."""
    config = field_config(unit=unit, color_mode="palette-classic")
    config["defaults"]["displayName"] = "${__field.labels.source_topic}"
    return config


def _stats(layout: Layout) -> None:
    for title, sql, unit, steps, note in (
        (
            "Events in per second",
            EVENTS_NOW,
            "short",
            ((None, "blue"),),
            "Input events consumed in the last minute, per second.",
        ),
        (
            "Consumer lag",
            LAG_NOW,
            "short",
            ((None, "green"), (LAG_HIGH / 5, "orange"), (float(LAG_HIGH), "red")),
            "Messages not yet consumed, summed over partitions at their last checkpoint.",
        ),
        (
            "Since last checkpoint",
            CHECKPOINT_AGE,
            "s",
            ((None, "green"), (10.0, "orange"), (float(CHECKPOINT_STALE_S), "red")),
            f"Red after {CHECKPOINT_STALE_S} s: the contract's bound for results to land.",
        ),
        (
            "Sink time p95, 5 min",
            SINK_NOW,
            "ms",
            ((None, "green"), (SINK_SLOW_MS / 2, "orange"), (float(SINK_SLOW_MS), "red")),
            "95th percentile of the ClickHouse write time per checkpoint.",
        ),
        (
            "DLQ messages, 5 min",
            DLQ_NOW,
            "short",
            (
                (None, "green"),
                (DLQ_SURGE_THRESHOLD / 10, "orange"),
                (float(DLQ_SURGE_THRESHOLD), "red"),
            ),
            f"Invalid messages sent to dead-letter queues; the alert fires above "
            f"{DLQ_SURGE_THRESHOLD}.",
        ),
        (
            "Late and duplicate events",
            RANGE_COUNTS,
            "short",
            ((None, "purple"),),
            "Events dropped as late (after window end + grace) and duplicates ignored, in the "
            "range.",
        ),
    ):
        layout.add(
            stat(title, sql, description=note, fields=field_config(unit=unit, steps=steps)), 4, 4
        )


def _checkpoints(layout: Layout) -> None:
    """Whether the worker is alive, read from what it last wrote: this works when it is dead."""
    layout.row("Checkpoints")
    stale = float(NO_CHECKPOINT_MINUTES * 60)
    staleness = override(
        "seconds_since",
        {
            "unit": "s",
            "thresholds": thresholds((None, "green"), (stale / 10, "orange"), (stale, "red")),
            "custom.cellOptions": {"type": "color-background"},
        },
    )
    layout.add(
        table(
            "Partitions by last checkpoint",
            PARTITIONS_NOW,
            description="Each partition at its last checkpoint, stalest first. A partition "
            "is checkpointed only when something arrived for it; when every one is stale the "
            f"worker is down or stuck, and the alert fires after {NO_CHECKPOINT_MINUTES} min.",
            fields=field_config(overrides=[staleness]),
        ),
        14,
        8,
    )
    layout.add(
        timeseries(
            "Longest gap between checkpoints",
            CHECKPOINT_GAPS,
            description="Per bucket and topic, the longest time between two checkpoints of "
            "a partition: spikes are restarts, rebalances, stalls or slow sinks.",
            fields=_named_by_topic("s"),
        ),
        10,
        8,
    )


def build() -> JSON:
    layout = Layout()
    layout.row("Now")
    _stats(layout)
    layout.row("Throughput")
    layout.add(
        timeseries(
            "Events in per second by topic",
            EVENTS_RATE,
            description="Consumed input events per second, per source topic.",
            fields=_named_by_topic(),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Late, duplicate and invalid events",
            LATE_AND_DUPLICATES,
            description="Per bucket and topic: late events dropped, duplicates "
            "ignored, invalid messages dead-lettered.",
            style="bars",
            stacking="normal",
        ),
        12,
        8,
    )
    layout.row("Dead letters")
    layout.add(
        timeseries(
            "DLQ messages by source topic",
            DLQ_BY_SOURCE,
            description="Dead letters per bucket and source topic.",
            style="bars",
            stacking="normal",
        ),
        10,
        9,
    )
    layout.add(
        table(
            "DLQ reasons",
            DLQ_REASONS,
            description="Why messages were rejected: the field and the rule, most "
            "frequent first (offending values are not shown).",
        ),
        14,
        9,
    )
    layout.row("Sink and lag")
    layout.add(
        timeseries(
            "Sink time per checkpoint",
            SINK_OVER_TIME,
            description="Average and slowest ClickHouse write per bucket.",
            fields=field_config(unit="ms", color_mode="palette-classic"),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Consumer lag by topic",
            latest_per_partition("lag"),
            description="Lag at the last checkpoint of each bucket; a line that "
            "keeps rising means the worker does not keep up.",
            fields=_named_by_topic(),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Open windows by topic",
            latest_per_partition("open_windows"),
            description="Windows held in memory; it should plateau.",
            fields=_named_by_topic(),
        ),
        8,
        8,
    )
    _checkpoints(layout)
    variables = [query_variable("source", "Source topic", SOURCE_VARIABLE)]
    return dashboard(
        UID,
        "Vũng Tàu · Pipeline health",
        description="Throughput, dead letters, late events, duplicates, sink time and lag "
        "of the stream workers.",
        tags=["pipeline", "live"],
        layout=layout,
        variables=variables,
        refresh="10s",
        time_from="now-1h",
    )
