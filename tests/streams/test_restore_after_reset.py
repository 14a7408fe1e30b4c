"""A re-key topic's restore after `vtops offsets reset`: a forward the rebuilt state left out
(its input offset is past its input partition's clock) sits inside an open window's stretch of
the topic; the restore must not re-learn its id, or the router's new copy would be dropped.
Both formats of the topic: records of forwards, and the one record per forward before them."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord
from kafka import KafkaProducer

from city.profile import load_city_profile
from city.settings import KafkaSettings
from sinks.base import BatchSink
from sinks.clickhouse.migrations import TABLES
from streams.app import aiokafka_config
from streams.engine.checkpoint import Checkpointer, StageSinks
from streams.engine.records import encode_forwards, forwards_header, origin_header
from streams.engine.state_store import META_KEY
from streams.engine.window_stage import WindowStage
from streams.payments import CashlessPayments
from tests.factories import T0
from tests.factories_payments import tally
from tests.streams.test_engine import Commits, Engine, Recording, engine  # noqa: F401
from vtops.replay.rebuild import before_targets


@pytest.mark.parametrize("batched", [True, False], ids=["records of forwards", "one per forward"])
def test_a_forward_past_its_input_clock_is_not_relearnt(
    engine: Engine,  # noqa: F811
    broker: str,
    batched: bool,
) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}"

    def stage() -> WindowStage[Any, Any]:
        tables: dict[str, BatchSink] = {name: Recording(name) for name in TABLES}
        return WindowStage(
            CashlessPayments(load_city_profile(), 900),
            topic,
            StageSinks(tables, Recording("out"), Recording("dlq")),
            engine.store,
            aiokafka_config(KafkaSettings(kafka_bootstrap=broker)),
            max_clock_skew_s=3600,
            highwater=lambda _topic, _partition: None,
        )

    # The rebuilt state holds input partition 0's "a" and "c" and partition 1's "b0" (its
    # offset 4): the reset point of partition 1 is offset 5, "b"'s. The re-key topic holds
    # all four, as records of their own or as records of forwards ("b0" and "b" in one).
    a, b0, b, c = (tally(n, f"VT-T-0000{i}", T0) for i, n in enumerate(["a", "b0", "b", "c"]))
    if batched:
        messages = [
            (forward_batch([(0, T0, a)]), forwards_header(0)),
            (forward_batch([(4, T0, b0), (5, T0, b)]), forwards_header(1)),
            (forward_batch([(1, T0, c)]), forwards_header(0)),
        ]
    else:
        messages = [
            (orjson.dumps(a), origin_header(0, 0, T0)),
            (orjson.dumps(b0), origin_header(1, 4, T0)),
            (orjson.dumps(b), origin_header(1, 5, T0)),
            (orjson.dumps(c), origin_header(0, 1, T0)),
        ]
    producer = KafkaProducer(bootstrap_servers=broker)
    for value, headers in messages:
        producer.send(topic, value=value, partition=0, headers=headers)
    producer.flush()
    producer.close()

    def record(offset: int, value: bytes, headers: Any) -> ConsumerRecord:
        return ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), headers)

    records = [record(n, *message) for n, message in enumerate(messages)]
    rebuilt = stage()
    asyncio.run(rebuilt.assign(0))
    # What `vtops offsets reset`'s rebuild folds of the topic.
    rebuilt.fold(0, [r for r in map(partial(before_targets, targets={0: 2, 1: 5}), records) if r])
    inputs = rebuilt.partition_state(0).inputs
    assert inputs is not None and inputs.clock(1).offset == 4
    asyncio.run(Checkpointer([rebuilt], engine.store, Commits()).run())

    restored = stage()
    assert asyncio.run(restored.assign(0)) == len(messages)
    # The router sends "b" again after the reset: it is new to this state; a copy of "b0"
    # is a duplicate, as its id was re-learnt.
    again = [(5, T0, b), (6, T0, {**b0, "terminal_id": "VT-T-00009"})]
    restored.fold(0, [record(len(messages), forward_batch(again), forwards_header(1))])
    asyncio.run(Checkpointer([restored], engine.store, Commits()).run())
    counters = asyncio.run(engine.store.load(topic, 0))[META_KEY]["counters"]
    assert (counters["accepted"], counters["duplicates"]) == (4, 1)


def forward_batch(forwards: list[tuple[int, int, dict[str, Any]]]) -> bytes:
    return encode_forwards(
        [(offset, time, orjson.dumps(event)) for offset, time, event in forwards]
    )
