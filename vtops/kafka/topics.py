"""Contract topics on the broker: create the missing ones, describe what is there."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.errors import NoError, TopicAlreadyExistsError, for_code

from city import topics
from city.kafka_client import admin_request
from city.settings import KafkaSettings
from vtops.kafka.retention import Retention, described_retention, retention_config

logger = logging.getLogger(__name__)


def contract_topic_names(settings: KafkaSettings) -> list[str]:
    """Every topic of the contract (section 3), with the run's prefix."""
    return [settings.topic(name) for name in topics.ALL]


def ensure_topics(settings: KafkaSettings, internal: Sequence[str] = ()) -> list[str]:
    """Create the contract topics, and the `internal` ones (broker-side names) a worker needs,
    that are missing; return the names created (maybe none).

    New topics get their kind's retention (vtops/kafka/retention.py). Idempotent: existing
    topics are left as they are (their partition count is not changed; `align_retention` sets
    their retention), and a topic created concurrently by another process counts as present.
    """
    wanted = dict.fromkeys([*contract_topic_names(settings), *internal])
    return create_missing_topics(
        settings,
        {name: TopicSpec(settings.partitions, retention_config(settings, name)) for name in wanted},
    )


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    configs: dict[str, str]  # topic configs, e.g. retention.ms, cleanup.policy


def create_missing_topics(settings: KafkaSettings, specs: dict[str, TopicSpec]) -> list[str]:
    """Create each topic of `specs` that is missing, with VTOPS_REPLICATION_FACTOR replicas,
    and wait for their leaders; the names this call created. The one way vtops makes topics."""
    bootstrap = settings.kafka_bootstrap
    existing = admin_request(settings, f"listing topics on {bootstrap}", _topic_names)
    missing = [name for name in specs if name not in existing]
    if not missing:
        return []
    request = {
        name: {
            "num_partitions": specs[name].partitions,
            "replication_factor": settings.replication_factor,
            "configs": specs[name].configs,
        }
        for name in missing
    }
    created: list[str] = []

    def create(admin: KafkaAdminClient) -> None:
        response = admin.create_topics(request, raise_errors=False)
        for result in response["topics"]:
            error = for_code(result["error_code"])
            if error is NoError:
                created.append(result["name"])
            elif error is not TopicAlreadyExistsError:  # created concurrently, or by us before
                message = result.get("error_message") or error.__name__
                raise error(f"topic {result['name']!r}: {message}")

    admin_request(settings, f"creating topics on {bootstrap}", create)
    # Producers started right after this call must find a leader for every partition.
    admin_request(
        settings,
        f"waiting for the new topics' leaders on {bootstrap}",
        lambda admin: admin.wait_for_topics(missing, timeout_ms=30_000),
    )
    for name in created:
        logger.info("topic created topic=%s partitions=%d", name, specs[name].partitions)
    return created


def _topic_names(admin: KafkaAdminClient) -> set[str]:
    return set(admin.list_topics())


@dataclass(frozen=True)
class TopicState:
    name: str
    exists: bool
    partitions: int | None
    retention_ms: int | None  # None: no such topic, or kept forever


def describe_contract_topics(settings: KafkaSettings) -> list[TopicState]:
    """Whether each contract topic exists on the broker, its partition count and retention."""
    wanted = contract_topic_names(settings)

    def describe(admin: KafkaAdminClient) -> tuple[list[dict[str, Any]], dict[str, Retention]]:
        present = [name for name in wanted if name in _topic_names(admin)]
        if not present:
            return [], {}
        return admin.describe_topics(present), described_retention(admin, present)

    described, retention = admin_request(
        settings, f"describing topics on {settings.kafka_bootstrap}", describe
    )
    partitions = {t["name"]: len(t.get("partitions") or []) for t in described}
    return [
        TopicState(
            name,
            name in partitions,
            partitions.get(name),
            retention[name].retention_ms if name in retention else None,
        )
        for name in wanted
    ]
