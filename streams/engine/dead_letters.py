"""A stage's dead letters: kept as its batches meet them, written by the checkpoint (step 3) to
`dlq_events` and to the input's DLQ topic."""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord

from schemas.dead_letter import dead_letter
from schemas.exceptions import InvalidEvent
from sinks.base import BatchSink, Row
from streams.engine.checkpoint import Cut, Step

log = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, topic: str, table: BatchSink, dead_letter_topic: BatchSink) -> None:
        self._topic = topic
        self._sinks = (table, dead_letter_topic)
        self._rows: list[Row] = []

    def add(
        self, partition: int, record: ConsumerRecord, error: Exception, topic: str | None = None
    ) -> None:
        """Keep the record with the reason `error` gives, as a message of `topic`'s `partition`
        at the record's offset (`topic`: the stage's own by default). Anything but InvalidEvent
        is a bug the record tripped: it is logged with its traceback (call this in the `except`
        block), and the partition behind it goes on."""
        topic = self._topic if topic is None else topic
        if isinstance(error, InvalidEvent):
            reason = error.reason
        else:
            log.exception(
                "unprocessable topic=%s partition=%d offset=%d",
                topic,
                partition,
                record.offset,
            )
            reason = f"payload: unprocessable ({type(error).__name__})"
        self._rows.append(
            dead_letter(
                topic,
                partition,
                record.offset,
                record.value,
                reason,
                key=record.key,
                headers=record.headers,
                timestamp_ms=record.timestamp,
            )
        )

    def cut(self, cut: Cut) -> None:
        rows, self._rows = self._rows, []
        for sink in self._sinks:
            cut.write(Step.DEAD_LETTERS, sink, rows)
