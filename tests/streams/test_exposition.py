"""The Prometheus text format of /metrics, and when the worker serves it."""

from __future__ import annotations

import math

from streams.health.exposition import Family, render


def test_render_writes_help_type_and_escaped_labels() -> None:
    events = Family("vtops_events_in_total", "counter", "Messages read.\nPer partition.")
    events.add(12, topic='odd"topic\\', partition="0")
    events.add(3.5, topic="camera.events", partition="1")
    age = Family("vtops_checkpoint_age_seconds", "gauge", "Since the last checkpoint.")
    lag = Family("vtops_consumer_lag", "gauge", "Messages behind.")
    lag.add(math.inf)
    assert render([events, age, lag]).splitlines() == [
        r"# HELP vtops_events_in_total Messages read.\nPer partition.",
        "# TYPE vtops_events_in_total counter",
        r'vtops_events_in_total{topic="odd\"topic\\",partition="0"} 12',
        'vtops_events_in_total{topic="camera.events",partition="1"} 3.5',
        "# HELP vtops_checkpoint_age_seconds Since the last checkpoint.",
        "# TYPE vtops_checkpoint_age_seconds gauge",
        "# HELP vtops_consumer_lag Messages behind.",
        "# TYPE vtops_consumer_lag gauge",
        "vtops_consumer_lag +Inf",
    ]
