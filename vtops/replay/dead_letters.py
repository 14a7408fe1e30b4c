"""Dead letters as engineers inspect and re-drive them: read from the `*.dlq` topics (which
every store configuration has, and which need no exclusive store), filtered by time and reason,
and sent back to their input topic once the cause is fixed.

A re-driven message keeps its original key, headers and timestamp (schemas/dead_letter.py), so
it lands on the partition its first copy was on, where the window stage's dedup knows its
event id: re-driving a letter twice, or one whose event also arrived valid, counts it once as
long as its window is open (after that it is late, and counts nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from city.kafka_client import kafka_python_config
from city.settings import KafkaSettings
from schemas.dead_letter import original_headers, original_key, original_value
from vtops.replay.exceptions import ReplayError
from vtops.replay.positions import offsets_at, records_between, retained_ranges
from vtops.replay.selection import StreamTopics

# Names the dead letter a re-driven message came from, for whoever traces it later.
REDRIVEN_HEADER = "vtops.redriven-from"


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    fields: dict[str, Any]  # the DLQ message (contract section 6)

    @property
    def reason(self) -> str:
        return str(self.fields.get("error", ""))

    def summary(self) -> dict[str, Any]:
        """What `vtops dlq show` prints of it: where it came from, when, why."""
        return {
            "source_topic": self.fields.get("source_topic"),
            "partition": self.fields.get("partition"),
            "offset": self.fields.get("offset"),
            "received_at": self.fields.get("received_at"),
            "error": self.reason,
        }


@dataclass(frozen=True)
class Redrive:
    """A letter and what re-driving does with it: the message to send, or why not."""

    letter: DeadLetter
    topic: str | None
    value: bytes | None
    skipped: str | None


def read_dead_letters(
    kafka: KafkaSettings,
    streams: list[StreamTopics],
    since_ms: int | None,
    reason: str | None,
) -> list[DeadLetter]:
    """The letters of the streams' DLQ topics written at or after `since_ms`, whose reason
    contains `reason` (case-insensitive), in topic and partition order."""
    ranges = retained_ranges(kafka, [s.dead_letters for s in streams])
    tps = sorted(ranges.end)
    starts = dict(ranges.beginning)
    if since_ms is not None:
        starts = {
            tp: ranges.end[tp] if o is None else o
            for tp, o in offsets_at(kafka, tps, since_ms).items()
        }
    wanted = None if reason is None else reason.lower()
    consumer = KafkaConsumer(**kafka_python_config(kafka), enable_auto_commit=False)
    try:
        return [
            letter
            for tp in tps
            for letter in _letters(consumer, tp, starts[tp], ranges.end[tp])
            if wanted is None or wanted in letter.reason.lower()
        ]
    finally:
        consumer.close()


def _letters(
    consumer: KafkaConsumer, tp: TopicPartition, start: int, stop: int
) -> Iterator[DeadLetter]:
    for record in records_between(consumer, tp, start, stop):
        try:
            fields = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            fields = {"error": "(not a dead letter: the DLQ message is not JSON)"}
        yield DeadLetter(tp.topic, tp.partition, record.offset, fields)


def plan_redrive(letters: list[DeadLetter], streams: list[StreamTopics]) -> list[Redrive]:
    """Each letter with the message that goes back to its input topic, or why it cannot."""
    inputs = {s.source for s in streams}
    planned = []
    for letter in letters:
        topic = letter.fields.get("source_topic")
        if topic not in inputs:
            # A re-key topic's dead letter (a damaged header) has no input to go back to.
            planned.append(Redrive(letter, None, None, f"{topic!r} is not an input topic"))
            continue
        try:
            # Each raises for what the letter did not keep whole (too long to fit).
            original_key(letter.fields)
            original_headers(letter.fields)
            planned.append(Redrive(letter, str(topic), original_value(letter.fields), None))
        except (ValueError, KeyError) as error:
            planned.append(Redrive(letter, None, None, str(error)))
    return planned


def redrive(kafka: KafkaSettings, planned: list[Redrive]) -> int:
    """Send every planned message with its original key, headers and timestamp; the count."""
    producer = KafkaProducer(**kafka_python_config(kafka), acks="all", linger_ms=5)
    failures: list[Exception] = []
    sent = 0
    try:
        for plan in planned:
            if plan.topic is None:
                continue
            letter = plan.letter
            trace = f"{letter.dlq_topic}/{letter.dlq_partition}/{letter.dlq_offset}".encode()
            producer.send(
                plan.topic,
                key=original_key(letter.fields),
                value=plan.value,
                headers=[*original_headers(letter.fields), (REDRIVEN_HEADER, trace)],
                timestamp_ms=letter.fields.get("timestamp"),
            ).add_errback(failures.append)
            sent += 1
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise ReplayError(f"{len(failures)} messages were not sent, the first: {failures[0]!r}")
    return sent
