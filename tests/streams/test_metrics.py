"""/metrics' counters, read through the worker's collector from real stages and a real store:
every message read ends in one outcome, and a counter never goes back within a process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import orjson
from kafka import KafkaProducer
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from city.profile import load_city_profile
from sinks.base import BatchSink
from sinks.clickhouse.migrations import TABLES
from streams.engine.checkpoint import Checkpointer, Stage, StageSinks
from streams.engine.route_stage import RouteStage
from streams.engine.service import StreamEngine
from streams.engine.state_store import StateStore
from streams.health.metrics import worker_registry
from streams.payments import CashlessPayments
from tests.factories import T0, status
from tests.factories_payments import tally
from tests.pipeline import BOOTSTRAP
from tests.streams.test_engine import (  # noqa: F401
    Commits,
    Engine,
    Recording,
    camera_stage,
    engine,
    passages,
    record,
)

OUTCOMES = ("accepted", "duplicate", "late", "invalid", "recorded", "forwarded")


def scrape(stages: list[Stage], store: StateStore | None = None) -> dict[str, float]:
    """Each counter family's total over its samples, as Prometheus would read them."""
    worker = StreamEngine(
        cast(StateStore, store),
        {},
        group_id="test-metrics",
        checkpoint_interval_s=1.0,
        max_pending_events=1000,
        stall_timeout_s=60.0,
        exclusive=False,
    )
    worker.register(stages)
    body = generate_latest(worker_registry(worker, [])).decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if family.type == "counter" and sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def outcomes(totals: dict[str, float]) -> float:
    return sum(totals.get(f"vtops_events_{outcome}_total", 0.0) for outcome in OUTCOMES)


def test_status_reports_are_read_and_end_as_records(engine: Engine) -> None:  # noqa: F811
    topic = f"t{uuid.uuid4().hex[:8]}"
    stage = camera_stage(engine, topic, Recording("traffic_flow_1m"))
    messages = [*passages(3), passages(1)[0], status("s1", "VT-CAM-001", T0)]
    asyncio.run(stage.assign(0))
    stage.fold(0, [record(topic, n, event) for n, event in enumerate(messages)])
    totals = scrape([stage])
    assert totals["vtops_events_in_total"] == 5
    assert totals["vtops_events_recorded_total"] == 1
    assert totals["vtops_events_duplicate_total"] == 1
    assert outcomes(totals) == 5


def test_a_router_counts_the_messages_it_reads(engine: Engine) -> None:  # noqa: F811
    source = f"t{uuid.uuid4().hex[:8]}"
    tables: dict[str, BatchSink] = {name: Recording(name) for name in TABLES}
    router = RouteStage(
        CashlessPayments(load_city_profile(), 900),
        source,
        f"{source}.by-group",
        StageSinks(tables, Recording("by-group"), Recording("dlq")),
        engine.store,
        max_clock_skew_s=3600,
        idle_partition_s=3600,
        highwater=lambda _topic, _partition: None,
        partitions_of=lambda _topic: 2,
    )
    events: list[dict[str, Any]] = [tally(f"p{n}", "VT-T-00001", T0) for n in range(3)]
    events.append({"event_id": "broken"})
    asyncio.run(router.assign(0))
    router.fold(0, [record(source, n, event) for n, event in enumerate(events)])
    totals = scrape([router])
    assert totals["vtops_events_in_total"] == 4
    assert totals["vtops_events_forwarded_total"] == 3
    assert totals["vtops_events_invalid_total"] == 1
    assert outcomes(totals) == 4


def test_a_partition_resumed_from_an_older_state_does_not_count_backwards(
    engine: Engine,  # noqa: F811
) -> None:
    """As after an offsets reset, or a rebalance that brings a partition back: the state is
    older than what this process counted, and the counter must still only grow."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    stage = camera_stage(engine, topic, Recording("traffic_flow_1m"))
    first, rest = passages(5), passages(5, first=5)
    # On the broker too: the restore re-reads the open windows' stretch of the topic.
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for event in first + rest:
        producer.send(topic, value=orjson.dumps(event), partition=0)
    producer.flush()
    producer.close()
    asyncio.run(stage.assign(0))
    stage.fold(0, [record(topic, n, event) for n, event in enumerate(first)])
    asyncio.run(Checkpointer([stage], engine.store, Commits()).run())  # saves 5 events
    stage.fold(0, [record(topic, 5 + n, event) for n, event in enumerate(rest)])
    seen = [scrape([stage])["vtops_events_in_total"]]
    stage.revoke(0)  # given up unsaved: its state stays at 5 events
    assert asyncio.run(stage.assign(0)) == 5
    seen.append(scrape([stage])["vtops_events_in_total"])
    stage.fold(0, [record(topic, 5 + n, event) for n, event in enumerate(rest)])
    seen.append(scrape([stage])["vtops_events_in_total"])
    assert seen == [10, 10, 15]  # read by this process: 5, then 5 twice
