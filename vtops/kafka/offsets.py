"""How far a consumer group has got: used to know when the pipeline has caught up."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from vtops.exceptions import BrokerError
from vtops.kafka.topics import admin_client, kafka_python_config
from vtops.settings import KafkaSettings


def remaining(settings: KafkaSettings, topic: str) -> int:
    """Messages of `topic` (a broker-side name) that the app's group has not yet committed."""
    consumer = KafkaConsumer(**kafka_python_config(settings))
    admin = admin_client(settings)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
        committed = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        return sum(
            max(0, ends[tp] - (committed[tp].offset if tp in committed else 0)) for tp in tps
        )
    finally:
        consumer.close()
        admin.close()


def wait_until_consumed(settings: KafkaSettings, topics: list[str], timeout_s: float) -> None:
    """Block until the app's committed offsets reach the end of every partition of `topics`.

    The worker commits only after a checkpoint, so this means every message so far is in
    ClickHouse. Raises BrokerError on timeout, saying how much is left.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = sum(remaining(settings, topic) for topic in topics)
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"the worker still has {left} messages to process after {timeout_s:.0f}s"
            )
        time.sleep(0.5)
