"""Which original messages `vtops dlq redrive` has sent back already: a compacted topic per app
(`<app id>.dlq.redriven`), keyed by the original message, so that a second re-drive does not
send the same letters again, and the letters of copies that failed again never multiply.

An original message is named `<input topic>/<partition>/<offset>` where it was first
dead-lettered; a re-driven copy carries that name in its `vtops.redrive-of` header, so the
letter of a copy that fails again names the same original.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from city.kafka_client import kafka_python_config
from city.settings import KafkaSettings
from vtops.kafka.topics import TopicSpec, create_missing_topics
from vtops.replay.exceptions import ReplayError
from vtops.replay.positions import records_between


def redrive_log_topic(kafka: KafkaSettings) -> str:
    return kafka.topic(f"{kafka.app_id}.dlq.redriven")


def redriven_originals(kafka: KafkaSettings) -> dict[str, int]:
    """Each original message re-driven so far, with how many times; empty before the first."""
    topic = redrive_log_topic(kafka)
    consumer = KafkaConsumer(**kafka_python_config(kafka), enable_auto_commit=False)
    try:
        if not consumer.partitions_for_topic(topic):
            return {}
        tp = TopicPartition(topic, 0)
        start, end = consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]
        found: dict[str, int] = {}
        for record in records_between(kafka, tp, start, end):
            found[record.key.decode()] = int(orjson.loads(record.value)["times"])
        return found
    finally:
        consumer.close()


def record_redriven(kafka: KafkaSettings, originals: Iterable[str], before: dict[str, int]) -> None:
    """Note that `originals` were sent once more than `before` says (after they were sent: a
    crash in between sends them again next time rather than never)."""
    _ensure_log(kafka)
    producer = KafkaProducer(**kafka_python_config(kafka), acks="all", linger_ms=5)
    failures: list[Exception] = []
    now = int(time.time() * 1000)
    try:
        for original in originals:
            value = {"times": before.get(original, 0) + 1, "last_ms": now}
            producer.send(
                redrive_log_topic(kafka), key=original.encode(), value=orjson.dumps(value)
            ).add_errback(failures.append)
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise ReplayError(
            f"the messages were sent, but {len(failures)} could not be recorded in "
            f"{redrive_log_topic(kafka)} (a next re-drive sends them again): {failures[0]!r}"
        )


def _ensure_log(kafka: KafkaSettings) -> None:
    """The log topic: one partition, compacted (only the latest count per original matters)."""
    create_missing_topics(
        kafka, {redrive_log_topic(kafka): TopicSpec(1, {"cleanup.policy": "compact"})}
    )
