"""Contract topics on the broker: create the missing ones, describe what is there."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from city import topics
from city.exceptions import BrokerError
from city.kafka_client import admin_client
from city.settings import KafkaSettings

logger = logging.getLogger(__name__)


@contextmanager
def _admin(settings: KafkaSettings) -> Iterator[KafkaAdminClient]:
    client = admin_client(settings)
    try:
        yield client
    finally:
        client.close()


def contract_topic_names(settings: KafkaSettings) -> list[str]:
    """Every topic of the contract (section 3), with the run's prefix."""
    return [settings.topic(name) for name in topics.ALL]


def ensure_topics(settings: KafkaSettings, internal: Sequence[str] = ()) -> list[str]:
    """Create the contract topics, and the `internal` ones (broker-side names) a worker needs,
    that are missing; return the names created (maybe none).

    Idempotent: existing topics are left as they are (their partition count is not changed),
    and a topic created concurrently by another process counts as present.
    """
    wanted = list(dict.fromkeys([*contract_topic_names(settings), *internal]))
    with _admin(settings) as admin:
        try:
            existing = set(admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            if not missing:
                return []
            spec = {
                name: {
                    "num_partitions": settings.partitions,
                    "replication_factor": settings.replication_factor,
                }
                for name in missing
            }
            response = admin.create_topics(spec, raise_errors=False)
        except KafkaError as exc:
            raise BrokerError(
                f"creating topics on {settings.kafka_bootstrap} failed: {exc!r}"
            ) from exc
        created: list[str] = []
        for result in response["topics"]:
            error = for_code(result["error_code"])
            if result["error_code"] == 0:
                created.append(result["name"])
            elif error is not TopicAlreadyExistsError:
                message = result.get("error_message") or error.__name__
                raise BrokerError(f"cannot create topic {result['name']!r}: {message}")
        try:
            # Producers started right after this call must find a leader for every partition.
            admin.wait_for_topics(created, timeout_ms=30_000)
        except KafkaError as exc:
            raise BrokerError(f"topics created but not ready: {exc}") from exc
    for name in created:
        logger.info("topic created topic=%s partitions=%d", name, settings.partitions)
    return created


@dataclass(frozen=True)
class TopicState:
    name: str
    exists: bool
    partitions: int | None


def describe_contract_topics(settings: KafkaSettings) -> list[TopicState]:
    """Whether each contract topic exists on the broker, and with how many partitions."""
    wanted = contract_topic_names(settings)
    with _admin(settings) as admin:
        try:
            existing = set(admin.list_topics())
            present = [name for name in wanted if name in existing]
            described = admin.describe_topics(present) if present else []
        except KafkaError as exc:
            raise BrokerError(
                f"listing topics on {settings.kafka_bootstrap} failed: {exc!r}"
            ) from exc
    partitions = {t["name"]: len(t.get("partitions") or []) for t in described}
    return [TopicState(name, name in existing, partitions.get(name)) for name in wanted]
