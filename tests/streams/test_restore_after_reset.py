"""A re-key topic's restore after `vtops offsets reset`: a forward the rebuilt state left out
(its input offset is past its input partition's clock) sits inside an open window's stretch of
the topic; the restore must not re-learn its id, or the router's new copy would be dropped."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from kafka import KafkaProducer

from city.profile import load_city_profile
from city.settings import KafkaSettings
from sinks.base import BatchSink
from sinks.clickhouse.migrations import TABLES
from streams.app import aiokafka_config
from streams.engine.checkpoint import Checkpointer, StageSinks
from streams.engine.records import origin_header
from streams.engine.state_store import META_KEY
from streams.engine.window_stage import WindowStage
from streams.payments import CashlessPayments
from tests.factories import T0
from tests.factories_payments import tally
from tests.streams.test_engine import Commits, Engine, Recording, engine  # noqa: F401


def test_a_forward_past_its_input_clock_is_not_relearnt(engine: Engine, broker: str) -> None:  # noqa: F811
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

    # Input partition 1's event "b" (its offset 5) is after the reset point: the rebuilt state
    # holds "a" and "c" of input partition 0, and partition 1's clock stops at offset 4.
    messages = [
        (tally("a", "VT-T-00001", T0), origin_header(0, 0, T0)),
        (tally("b", "VT-T-00002", T0), origin_header(1, 5, T0)),
        (tally("c", "VT-T-00003", T0), origin_header(0, 1, T0)),
    ]
    producer = KafkaProducer(bootstrap_servers=broker)
    for event, headers in messages:
        producer.send(topic, value=orjson.dumps(event), partition=0, headers=headers)
    producer.flush()
    producer.close()

    def record(offset: int, event: dict[str, Any], headers: Any) -> ConsumerRecord:
        value = orjson.dumps(event)
        return ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), headers)

    rebuilt = stage()
    asyncio.run(rebuilt.assign(0))
    rebuilt.fold(0, [record(n, *messages[n]) for n in (0, 2)])
    inputs = rebuilt.partition_state(0).inputs
    assert inputs is not None
    inputs.clock(1).offset = 4
    asyncio.run(Checkpointer([rebuilt], engine.store, Commits()).run())

    restored = stage()
    assert asyncio.run(restored.assign(0)) == 3
    # The router sends "b" again after the reset: it is new to this state.
    restored.fold(0, [record(3, *messages[1])])
    asyncio.run(Checkpointer([restored], engine.store, Commits()).run())
    counters = asyncio.run(engine.store.load(topic, 0))[META_KEY]["counters"]
    assert (counters["accepted"], counters["duplicates"]) == (3, 0)
