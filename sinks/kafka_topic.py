"""Kafka topics as sinks: window rows and dead letters as JSON, and raw forwarded messages.

A batch is sent and the app's producer flushed (it waits for every replica) before `write`
returns; the checkpoint acks input only after that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from sinks.base import BatchSink, Row
from sinks.exceptions import TransientSinkError


class KafkaTopic(BatchSink):
    """Rows as JSON, keyed by one of their fields."""

    def __init__(self, topic: Any, app: Any, key_field: str) -> None:
        """`topic` is a Faust topic with raw serializers; `app` the Faust app that owns it."""
        super().__init__()
        self.name = topic.get_topic_name()
        self._topic = topic
        self._app = app
        self._key_field = key_field

    def message(self, row: Row) -> tuple[bytes | None, bytes | None]:
        """The (key, value) a row is sent as."""
        key = row.get(self._key_field)
        value = orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS)
        return None if key is None else str(key).encode(), value

    async def write(self, batch: Sequence[Row]) -> None:
        try:
            for row in batch:
                key, value = self.message(row)
                await self._topic.send(key=key, value=value)
            await self._app.producer.flush()
        except KafkaError as error:
            raise TransientSinkError(f"{self.name}: {type(error).__name__}") from error


class KafkaForward(KafkaTopic):
    """Rows are {"key": str, "value": bytes | None}: the value goes on unchanged, re-keyed."""

    def __init__(self, topic: Any, app: Any) -> None:
        super().__init__(topic, app, key_field="key")

    def message(self, row: Row) -> tuple[bytes | None, bytes | None]:
        value: bytes | None = row["value"]
        return str(row["key"]).encode(), value
