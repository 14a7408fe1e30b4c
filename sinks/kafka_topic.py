"""A Kafka topic as a sink: window rows and dead letters, as JSON, keyed by a row field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from sinks.base import BatchSink, Row
from sinks.exceptions import TransientSinkError


class KafkaTopic(BatchSink):
    def __init__(self, topic: Any, app: Any, key_field: str) -> None:
        """`topic` is a Faust topic with raw serializers; `app` the Faust app that owns it."""
        super().__init__()
        self.name = topic.get_topic_name()
        self._topic = topic
        self._app = app
        self._key_field = key_field

    async def write(self, batch: Sequence[Row]) -> None:
        try:
            for row in batch:
                key = row.get(self._key_field)
                await self._topic.send(
                    key=None if key is None else str(key).encode(),
                    value=orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS),
                )
            await self._app.producer.flush()
        except KafkaError as error:
            raise TransientSinkError(f"{self.name}: {type(error).__name__}") from error
