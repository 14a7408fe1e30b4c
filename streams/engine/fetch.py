"""`getmany` for every reader of the engine, that any producer's bytes cannot stop.

aiokafka raises `UnicodeDecodeError` out of `getmany` when a record has a header name that is
not UTF-8 (streams/engine/record_batches.py says why it cannot be skipped through aiokafka). The
raise also drops what that call had drained from other partitions, whose positions have moved
past it. So `Fetch.getmany` notes every partition's position before each call; when one fails
it seeks them all back, reads that one round of records itself, from the broker, byte by byte
(`records_in`), and seeks each partition past what it hands over. The record with the bad name
comes back in its place as an `UnreadableRecord`, which a stage makes one dead letter; every
other record of the round comes back once, as from aiokafka.

Why not fix it inside aiokafka: the names are decoded in its compiled batch reader, which has
no hook; replacing its classes would change every consumer in the process and break silently
with an upgrade. Reading the rare failing round ourselves keeps aiokafka's fast path for every
other poll; the protocol classes it uses (`AIOKafkaClient`, `FetchRequest`) are pinned by the
lock file and exercised by a test against a real broker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.fetch import FetchRequest

from streams.engine.exceptions import UnreadableBatch
from streams.engine.record_batches import records_in

log = logging.getLogger(__name__)

# What the round read byte by byte asks of each partition: the consumer's own fetch size.
_PARTITION_BYTES = 4 * 1024 * 1024
_READ_UNCOMMITTED = 0

Fetched = dict[TopicPartition, list[ConsumerRecord]]


class Fetch:
    """One consumer's polls. `client_config` are the keywords the consumer was made with, for
    the connection that reads a failed round."""

    def __init__(self, consumer: AIOKafkaConsumer, client_config: dict[str, Any]) -> None:
        self._consumer = consumer
        self._client_config = client_config

    @property
    def consumer(self) -> AIOKafkaConsumer:
        return self._consumer

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> Fetched:
        """As `AIOKafkaConsumer.getmany`, with unreadable records in their place."""
        consumer = self._consumer
        wanted = partitions or tuple(consumer.assignment())
        positions = {tp: await consumer.position(tp) for tp in wanted}
        try:
            fetched: Fetched = await consumer.getmany(
                *partitions, timeout_ms=timeout_ms, max_records=max_records
            )
            return fetched
        except UnicodeDecodeError:
            return await self._read_round(positions)

    async def _read_round(self, positions: dict[TopicPartition, int]) -> Fetched:
        consumer = self._consumer
        assigned = consumer.assignment()
        owned = {tp: offset for tp, offset in positions.items() if tp in assigned}
        for tp in assigned - positions.keys():
            # Assigned while the call waited for a rebalance: its group's committed offset is
            # never past what the stages hold (they commit after saving their state, and skip
            # what they hold), so re-reading from there loses nothing and counts nothing twice.
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
                committed = await consumer.position(tp)
            owned[tp] = committed
        for tp, offset in owned.items():
            consumer.seek(tp, offset)
        client = AIOKafkaClient(**self._client_config)
        await client.bootstrap()
        try:
            await client.set_topics(sorted({tp.topic for tp in owned}))
            raw = await _fetch_raw(client, owned)
        finally:
            await client.close()
        fetched: Fetched = {}
        assigned = consumer.assignment()  # a rebalance may have run meanwhile
        for tp, data in raw.items():
            if tp not in assigned:
                continue
            batches = records_in(tp, data, owned[tp])
            if batches.records:
                fetched[tp] = batches.records
            consumer.seek(tp, batches.next_offset)
        unreadable = sum(type(r) is not ConsumerRecord for rs in fetched.values() for r in rs)
        log.warning(
            "records aiokafka cannot read: read this round byte by byte partitions=%d "
            "records=%d unreadable=%d",
            len(fetched),
            sum(len(rs) for rs in fetched.values()),
            unreadable,
        )
        return fetched


async def _fetch_raw(
    client: AIOKafkaClient, positions: dict[TopicPartition, int]
) -> dict[TopicPartition, bytes]:
    """Each partition's record set from its position, from its leader."""
    by_leader: dict[int, dict[str, list[tuple[int, int, int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for tp, offset in positions.items():
        leader = client.cluster.leader_for_partition(tp)
        if leader is None or leader < 0:
            raise UnreadableBatch(f"{tp.topic} partition {tp.partition}: no leader to read from")
        by_leader[leader][tp.topic].append((tp.partition, offset, _PARTITION_BYTES))
    found: dict[TopicPartition, bytes] = {}
    for leader, topics in by_leader.items():
        request = FetchRequest(
            0, 1, len(positions) * _PARTITION_BYTES, _READ_UNCOMMITTED, list(topics.items())
        )
        response = await client.send(leader, request)
        for topic, partitions in response.topics:
            for partition, error_code, _, *data in partitions:
                error = for_code(error_code)
                if error_code:
                    raise UnreadableBatch(
                        f"{topic} partition {partition}: the broker refused to fetch "
                        f"({error.__name__})"
                    )
                found[TopicPartition(topic, partition)] = bytes(data[-1] or b"")
    return found
