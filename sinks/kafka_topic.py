"""Kafka topics as sinks: window rows and dead letters as JSON, and raw re-keyed records.

A batch is handed to the app's producer, and `write` returns once every message of it has been
acknowledged by every replica (`acks=all`); the checkpoint goes on to its commit point only
after that. Messages of one batch keep their order within a partition: a routing stage's
watermark follows its forwards.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from city.event_loop import LoopShare
from schemas.dead_letter import original_key
from sinks.base import BatchSink, Row
from sinks.exceptions import TransientSinkError


class KafkaRecords(BatchSink):
    """Rows are records: {"key": bytes | None, "value": bytes | None} and optionally
    "partition" (None: by key) and "headers"."""

    def __init__(self, topic: str, producer: Any) -> None:
        """`producer` is the Faust app's producer (faust.transport.drivers.aiokafka)."""
        super().__init__()
        self.name = topic
        self._producer = producer

    def record(self, row: Row) -> Row:
        return row

    async def write(self, batch: Sequence[Row]) -> None:
        try:
            deliveries = []
            share = LoopShare()
            for row in batch:
                await share.turn()
                record = self.record(row)
                deliveries.append(
                    await self._producer.send(
                        self.name,
                        record["key"],
                        record["value"],
                        record.get("partition"),
                        None,
                        record.get("headers"),
                    )
                )
            # Every message acknowledged by every replica, or the batch is retried: a flush
            # alone does not say whether a delivery failed.
            await asyncio.gather(*deliveries)
        except (KafkaError, ProducerSendError) as error:
            raise TransientSinkError(f"{self.name}: {type(error).__name__}") from error


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
