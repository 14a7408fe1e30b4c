"""How long each kind of topic keeps its messages, set on purpose rather than left to the
broker's default (7 days).

Kafka deletes a whole segment once the newest record in it is older than the topic's
`retention.ms`, judged by the records' timestamps. Each kind of topic has its own setting
(city/settings.py; README "Retention, on purpose" says why each default): `vtops topics create`
makes topics with it and brings topics made before to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from city import topics
from city.kafka_client import admin_request, error_from_text
from city.settings import KafkaSettings

logger = logging.getLogger(__name__)

RETENTION_MS = "retention.ms"
TIMESTAMP_TYPE = "message.timestamp.type"
DAY_MS = 86_400_000
TopicKind = Literal["input", "re-key", "output", "dead-letter"]


def topic_kind(settings: KafkaSettings, name: str) -> TopicKind:
    """The kind of a broker-side topic name: the contract's by their names; any other topic of
    the worker's is one of its re-key topics (its only internal ones)."""
    if name in {settings.topic(t) for t in topics.INPUTS}:
        return "input"
    if name in {settings.topic(t) for t in topics.OUTPUTS}:
        return "output"
    if name in {settings.topic(topics.dead_letters_of(t)) for t in topics.INPUTS}:
        return "dead-letter"
    return "re-key"


def retention_ms(settings: KafkaSettings, kind: TopicKind) -> int:
    days = {
        "input": settings.input_retention_days,
        "re-key": settings.rekey_retention_days,
        "output": settings.output_retention_days,
        "dead-letter": settings.dlq_retention_days,
    }[kind]
    return round(days * DAY_MS)


def retention_config(settings: KafkaSettings, name: str) -> dict[str, str]:
    """The topic configuration a new topic `name` is created with."""
    return {RETENTION_MS: str(retention_ms(settings, topic_kind(settings, name)))}


@dataclass(frozen=True)
class RetentionChange:
    topic: str
    kind: TopicKind
    before_ms: int | None  # None: kept forever
    after_ms: int


def align_retention(settings: KafkaSettings, names: Sequence[str]) -> list[RetentionChange]:
    """Set `retention.ms` of each existing topic among `names` to its kind's setting where it
    differs; what it changed (nothing on a second run). Other settings of a topic are kept."""
    wanted = {name: retention_ms(settings, topic_kind(settings, name)) for name in names}
    bootstrap = settings.kafka_bootstrap

    current = topic_retention(settings, list(wanted))
    changes = [
        RetentionChange(name, topic_kind(settings, name), kept.retention_ms, wanted[name])
        for name, kept in current.items()
        if kept.retention_ms != wanted[name]
    ]
    if not changes:
        return []

    def alter(admin: KafkaAdminClient) -> None:
        resources = [
            ConfigResource(
                ConfigResourceType.TOPIC, change.topic, {RETENTION_MS: str(change.after_ms)}
            )
            for change in changes
        ]
        # Incremental: a topic's other settings (an operator's, say) are left as they are.
        results = admin.alter_configs(resources, incremental=True).get("topic", {})
        refused = {name: result for name, result in results.items() if result != "OK"}
        if refused:
            raise error_from_text(min(refused.items())[1])

    admin_request(settings, f"setting topics' retention on {bootstrap}", alter)
    for change in changes:
        logger.info(
            "topic retention set topic=%s kind=%s before_ms=%s after_ms=%d",
            change.topic,
            change.kind,
            change.before_ms,
            change.after_ms,
        )
    return changes


@dataclass(frozen=True)
class Retention:
    """How long a topic keeps its messages, as the broker says now."""

    topic: str
    retention_ms: int | None  # None: kept forever (retention.ms = -1)
    log_append_time: bool  # the broker stamps each message as it arrives: ages from arrival

    def horizon_ms(self, now_ms: int | None = None) -> int | None:
        """The oldest timestamp the topic keeps now; None when it keeps every one."""
        if self.retention_ms is None:
            return None
        return (int(time.time() * 1000) if now_ms is None else now_ms) - self.retention_ms


def topic_retention(settings: KafkaSettings, names: Sequence[str]) -> dict[str, Retention]:
    """The retention of each existing topic among `names` (broker-side), read from the broker:
    replay needs the topic's real setting, whoever set it."""

    def describe(admin: KafkaAdminClient) -> dict[str, Retention]:
        return described_retention(admin, sorted(set(names) & set(admin.list_topics())))

    return admin_request(
        settings, f"reading topics' retention on {settings.kafka_bootstrap}", describe
    )


def described_retention(admin: KafkaAdminClient, names: Sequence[str]) -> dict[str, Retention]:
    """The retention of each of the existing topics `names`; for use inside an admin_request
    that asks more (`vtops topics list`)."""
    if not names:
        return {}
    keys = {RETENTION_MS: None, TIMESTAMP_TYPE: None}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, dict(keys)) for name in names]
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    found = {}
    for name in names:
        configs = described.get(name, {})
        ms = _ms(configs.get(RETENTION_MS))
        stamped = configs.get(TIMESTAMP_TYPE, {}).get("value") == "LogAppendTime"
        found[name] = Retention(name, None if ms is None or ms < 0 else ms, stamped)
    return found


def _ms(entry: dict[str, object] | None) -> int | None:
    value = entry.get("value") if entry else None
    return int(str(value)) if value is not None else None
