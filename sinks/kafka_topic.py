"""Kafka topics as sinks: window rows and dead letters as JSON, and raw re-keyed records.

A batch is handed to the app's producer, and `write` returns once every message of it has been
acknowledged by every replica (`acks=all`); the checkpoint goes on to its commit point only
after that. Messages of one batch keep their order within a partition: a routing stage's
watermark follows its forwards.

The messages go whole batches at a time, through aiokafka's batch builder under the Faust
producer: a message costs an append, where the producer's `send` cost 40-60 µs of Python a
message (Faust's signal, aiokafka's metadata wait, serialisation and partitioner), which made
the re-key topic's forwards the costliest step of the payments and portal streams (issue 20).
Partitions are chosen by the producer's own partitioner (murmur2 of the key, as the Java
client), so a key lands where `send` would have put it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faust.exceptions import ProducerSendError

from city.event_loop import LoopShare
from schemas.dead_letter import original_key
from sinks.base import BatchSink, Row
from sinks.exceptions import TransientSinkError

estimate_size_in_bytes = DefaultRecordBatchBuilder.estimate_size_in_bytes


class KeyPartitions:
    """The partition the producer's partitioner picks for a key, remembered per key: a topic
    sees a few thousand keys (window groups, wards, agencies) a million times, and the
    partitioner hashes in pure Python."""

    def __init__(self, partitions: list[int], partitioner: Any) -> None:
        self._partitions = partitions
        self._partitioner = partitioner
        self._by_key: dict[bytes, int] = {}

    @property
    def count(self) -> int:
        return len(self._partitions)

    def of(self, key: bytes | None) -> int:
        if key is None:  # spread as the partitioner spreads keyless messages
            chosen: int = self._partitioner(None, self._partitions, self._partitions)
            return chosen
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self._partitioner(key, self._partitions, self._partitions)
        return found


class KafkaRecords(BatchSink):
    """Rows are records: {"key": bytes | None, "value": bytes | None} and optionally
    "partition" (None: by key) and "headers"."""

    def __init__(self, topic: str, producer: Any) -> None:
        """`producer` is the Faust app's producer (faust.transport.drivers.aiokafka)."""
        super().__init__()
        self.name = topic
        self._producer = producer
        self._by_key: KeyPartitions | None = None

    def record(self, row: Row) -> Row:
        return row

    async def write(self, batch: Sequence[Row]) -> None:
        try:
            await self._send(batch)
        except (KafkaError, ProducerSendError) as error:
            raise TransientSinkError(f"{self.name}: {type(error).__name__}") from error

    async def _send(self, batch: Sequence[Row]) -> None:
        # The Faust producer's aiokafka client: Faust's own `send` adds only per-message cost.
        producer: AIOKafkaProducer = self._producer._ensure_producer()
        partitions = await self._partitions(producer)
        filling: dict[int, Any] = {}  # partition -> its batch being filled
        deliveries: list[asyncio.Future[Any]] = []
        share = LoopShare()
        for row in batch:
            await share.turn()
            record = self.record(row)
            key, value, headers = record["key"], record["value"], record.get("headers") or []
            if estimate_size_in_bytes(key, value, headers) > self._producer.max_request_size:
                # What `send` refuses before it queues anything (the broker would refuse the
                # whole batch): transient, so the checkpoint waits rather than drop it.
                raise MessageSizeTooLargeError(f"{self.name}: a message over max_request_size")
            partition = record.get("partition")
            if partition is None:
                partition = partitions.of(key)
            builder = filling.get(partition)
            if (
                builder is None
                or builder.append(timestamp=None, key=key, value=value, headers=headers) is None
            ):
                if builder is not None:
                    deliveries.append(
                        await producer.send_batch(builder, self.name, partition=partition)
                    )
                # A new batch takes its first message whatever its size (bounded above).
                builder = filling[partition] = producer.create_batch()
                builder.append(timestamp=None, key=key, value=value, headers=headers)
        for partition, builder in filling.items():
            deliveries.append(await producer.send_batch(builder, self.name, partition=partition))
        # Every message acknowledged by every replica, or the batch is retried: a flush
        # alone does not say whether a delivery failed.
        await asyncio.gather(*deliveries)

    async def _partitions(self, producer: AIOKafkaProducer) -> KeyPartitions:
        found = await producer.partitions_for(self.name)
        if self._by_key is None or self._by_key.count != len(found):
            self._by_key = KeyPartitions(sorted(found), self._producer.partitioner)
        return self._by_key


class KafkaTopic(KafkaRecords):
    """Rows as JSON, keyed by one of their fields."""

    def __init__(self, topic: str, producer: Any, key_field: str) -> None:
        super().__init__(topic, producer)
        self._key_field = key_field

    def record(self, row: Row) -> Row:
        key = row.get(self._key_field)
        return {"key": None if key is None else str(key).encode(), "value": _row_json(row)}


def _row_json(row: Row) -> bytes:
    """A row as JSON. orjson writes integers of at most 64 bits; a payments window's sums may
    pass that (schemas/payments.py), and the standard library writes integers of any size."""
    try:
        return orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(row, default=_isoformat, separators=(",", ":")).encode()


def _isoformat(value: Any) -> str:
    if isinstance(value, date):  # datetime too: the times and days of window rows
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


class DeadLetterTopic(KafkaRecords):
    """Dead letters as JSON, keyed by the original message's key: a DLQ partition holds the
    letters of one key together, in order, and a replay sends each to its key's partition.
    A letter that could not keep the key (schemas/dead_letter.py) has none."""

    def record(self, row: Row) -> Row:
        return {
            "key": None if row["origin_bytes"] is not None else original_key(row),
            "value": orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS),
        }
