"""Dead letters as engineers inspect and re-drive them: read from the `*.dlq` topics (which
every store configuration has, and which need no exclusive store), filtered by time and reason,
and sent back to their input topic once the cause is fixed.

A re-driven message keeps its original key, headers and timestamp (schemas/dead_letter.py), so
it lands on the partition its first copy was on, where the window stage's dedup knows its
event id: re-driving a letter twice, or one whose event also arrived valid, counts it once as
long as its window is open (after that it is late, and counts nothing). Each original message
is sent back once (vtops/replay/redrive_log.py remembers which were), however many letters its
copies left, unless the engineer asks for once more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaProducer, TopicPartition

from city.kafka_client import kafka_python_config
from city.settings import KafkaSettings
from schemas.dead_letter import original_headers, original_key, original_value
from schemas.exceptions import InvalidEvent
from streams.engine.skew import reject_far_future
from vtops.replay.exceptions import ReplayError
from vtops.replay.positions import offsets_at, records_between, retained_ranges
from vtops.replay.selection import StreamTopics

# On a re-driven copy: the original message it is a copy of (`<topic>/<partition>/<offset>`),
# so that the letter of a copy that fails again names the same original.
REDRIVE_OF_HEADER = "vtops.redrive-of"


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    fields: dict[str, Any]  # the DLQ message (contract section 6)

    @property
    def reason(self) -> str:
        return str(self.fields.get("error", ""))

    @property
    def redrive_of(self) -> str | None:
        """The original message when this is the letter of a re-driven copy."""
        try:
            headers = original_headers(self.fields)
        except (ValueError, KeyError):
            return None
        return next(
            (v.decode(errors="replace") for name, v in headers if name == REDRIVE_OF_HEADER and v),
            None,
        )

    @property
    def original(self) -> str:
        """The message first dead-lettered: this letter's own, or the one it is a copy of."""
        f = self.fields
        return self.redrive_of or f"{f.get('source_topic')}/{f.get('partition')}/{f.get('offset')}"

    def summary(self) -> dict[str, Any]:
        """What `vtops dlq show` prints of it: where it came from, when, why."""
        return {
            "source_topic": self.fields.get("source_topic"),
            "partition": self.fields.get("partition"),
            "offset": self.fields.get("offset"),
            "received_at": self.fields.get("received_at"),
            "error": self.reason,
            "redrive_of": self.redrive_of,
        }


@dataclass(frozen=True)
class Redrive:
    """An original message's latest letter and what re-driving does with it: the message to
    send, or why not; and why it would be a dead letter again, if it would."""

    letter: DeadLetter
    topic: str | None
    value: bytes | None
    skipped: str | None
    fails_again: str | None = None


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
    return [
        letter
        for tp in tps
        for letter in _letters(kafka, tp, starts[tp], ranges.end[tp])
        if wanted is None or wanted in letter.reason.lower()
    ]


def _letters(
    kafka: KafkaSettings, tp: TopicPartition, start: int, stop: int
) -> Iterator[DeadLetter]:
    for record in records_between(kafka, tp, start, stop):
        try:
            fields = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            fields = {"error": "(not a dead letter: the DLQ message is not JSON)"}
        yield DeadLetter(tp.topic, tp.partition, record.offset, fields)


def plan_redrive(
    letters: list[DeadLetter],
    streams: list[StreamTopics],
    redriven: dict[str, int],
    again: bool,
    max_clock_skew_s: int,
) -> list[Redrive]:
    """One plan per original message (its latest letter): the message that goes back to its
    input topic, checked as the worker will check it, or why it is not sent. An original in
    `redriven` is sent again only when asked (`again`)."""
    by_source = {s.source: s for s in streams}
    latest = {letter.original: letter for letter in letters}
    latest_ms = int(time.time() * 1000) + max_clock_skew_s * 1000
    planned = []
    for original, letter in latest.items():
        topic = letter.fields.get("source_topic")
        times = redriven.get(original, 0)
        if topic not in by_source:
            # A re-key topic's dead letter (a damaged header) has no input to go back to.
            planned.append(Redrive(letter, None, None, f"{topic!r} is not an input topic"))
            continue
        if times and not again:
            skipped = f"re-driven {times}× already (--again sends each once more)"
            planned.append(Redrive(letter, None, None, skipped))
            continue
        try:
            # Each raises for what the letter did not keep whole (too long to fit).
            original_key(letter.fields)
            original_headers(letter.fields)
            value = original_value(letter.fields)
        except (ValueError, KeyError) as error:
            planned.append(Redrive(letter, None, None, str(error)))
            continue
        fails = _fails_again(by_source[str(topic)], value, latest_ms)
        planned.append(Redrive(letter, str(topic), value, None, fails))
    return planned


def _fails_again(topics: StreamTopics, value: bytes, latest_ms: int) -> str | None:
    """Why the worker would dead-letter the message again (its checks, not its lateness,
    which depends on the live state), None when it is valid now."""
    stream = topics.stream
    try:
        event = stream.decode(value)
        reject_far_future(stream, event, latest_ms)
        stream.assign(event)
    except InvalidEvent as error:
        return error.reason
    except Exception as error:  # what the worker's dead-letter path does with a bug tripped
        return f"payload: unprocessable ({type(error).__name__})"
    return None


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
            headers = [h for h in original_headers(letter.fields) if h[0] != REDRIVE_OF_HEADER]
            producer.send(
                plan.topic,
                key=original_key(letter.fields),
                value=plan.value,
                headers=[*headers, (REDRIVE_OF_HEADER, letter.original.encode())],
                timestamp_ms=letter.fields.get("timestamp"),
            ).add_errback(failures.append)
            sent += 1
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise ReplayError(f"{len(failures)} messages were not sent, the first: {failures[0]!r}")
    return sent
