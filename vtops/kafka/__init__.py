"""The local Kafka broker and the contract's topics on it."""

from __future__ import annotations

from vtops.kafka.broker import BrokerStatus, LocalBroker
from vtops.kafka.jars import default_kafka_home
from vtops.kafka.topics import (
    TopicState,
    contract_topic_names,
    describe_contract_topics,
    ensure_topics,
)

__all__ = [
    "BrokerStatus",
    "LocalBroker",
    "TopicState",
    "contract_topic_names",
    "default_kafka_home",
    "describe_contract_topics",
    "ensure_topics",
]
