"""Reprocess recomputes a window only if retention kept all its input: what it reads of that."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from city.settings import KafkaSettings
from vtops.replay.positions import oldest_retained_ms, retained_ranges

pytestmark = pytest.mark.integration

T0 = 1_764_460_800_000  # 2025-11-30T00:00:00Z


def test_the_oldest_retained_time_is_that_of_the_latest_first_message_of_a_cut_partition(
    broker: str,
) -> None:
    topic = f"retention-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=broker)
    for partition in (0, 1):
        for n in range(5):
            ts = T0 + partition * 100_000 + n * 1_000
            producer.send(topic, value=b"x", partition=partition, timestamp_ms=ts)
    producer.flush()
    producer.close()
    settings = KafkaSettings(kafka_bootstrap=broker)
    try:
        assert oldest_retained_ms(settings, retained_ranges(settings, [topic])) is None
        # Retention takes partition 0's first three messages and partition 1's first one.
        admin.delete_records({TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 1})
        ranges = retained_ranges(settings, [topic])
        assert oldest_retained_ms(settings, ranges) == max(T0 + 3_000, T0 + 100_000 + 1_000)
    finally:
        admin.delete_topics([topic])
        admin.close()
