"""What the worker's stages need to run outside the worker (vtops/replay/rebuild.py and
reprocess.py): a store with nothing saved, sinks that keep nothing, and a partition's records
between two offsets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from sinks.base import BatchSink, Row
from sinks.clickhouse.migrations import TABLES
from streams.engine.checkpoint import StageSinks
from streams.engine.state_store import StateStore
from vtops.replay.exceptions import ReplayError

# Polls in a row with nothing to read before a range is declared unreadable.
_IDLE_POLLS = 30


class Discard(BatchSink):
    """Rows an offline run computes but does not write where the worker would."""

    name = "discard"

    async def write(self, batch: Sequence[Row]) -> None:
        return None


class NothingSaved(StateStore):
    """An offline run starts where a worker without saved state starts."""

    def __init__(self) -> None:  # no client: an offline run reads no store and writes none
        pass

    async def load(self, topic: str, partition: int) -> dict[str, Any]:
        return {}


def discarding_sinks(**tables: BatchSink) -> StageSinks:
    """Sinks that keep nothing, except the given tables."""
    discard = Discard()
    return StageSinks({**dict.fromkeys(TABLES, discard), **tables}, discard, discard)


async def read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, stop: int
) -> AsyncIterator[list[ConsumerRecord]]:
    """`tp`'s records with offsets in [start, stop), in batches."""
    if start >= stop:
        return
    consumer.assign([tp])
    consumer.seek(tp, start)
    idle = 0
    while await consumer.position(tp) < stop:
        records = (await consumer.getmany(tp, timeout_ms=500, max_records=5_000)).get(tp, [])
        idle = 0 if records else idle + 1
        if idle >= _IDLE_POLLS:
            raise ReplayError(
                f"{tp.topic} partition {tp.partition}: offsets {start}..{stop - 1} cannot be "
                f"read (stopped at {await consumer.position(tp)}); was the topic truncated?"
            )
        kept = [record for record in records if record.offset < stop]
        if kept:
            yield kept
