"""A Kafka topic as a sink of raw messages: forwards values unchanged under a new key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError

from sinks.base import BatchSink, Row
from sinks.exceptions import TransientSinkError


class KafkaForward(BatchSink):
    """Rows are {"key": str, "value": bytes | None}; a batch is flushed to the broker (the
    app's producer waits for every replica) before `write` returns."""

    def __init__(self, topic: Any, app: Any) -> None:
        """`topic` is a Faust topic with raw serializers; `app` the Faust app that owns it."""
        super().__init__()
        self.name = topic.get_topic_name()
        self._topic = topic
        self._app = app

    async def write(self, batch: Sequence[Row]) -> None:
        try:
            for row in batch:
                await self._topic.send(key=row["key"].encode(), value=row["value"])
            await self._app.producer.flush()
        except KafkaError as error:
            raise TransientSinkError(f"{self.name}: {type(error).__name__}") from error
