"""How far a consumer group has got: used to know when the pipeline has caught up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import GroupIdNotFoundError, NoError
from kafka.structs import OffsetAndMetadata

from city.exceptions import BrokerError
from city.kafka_client import (
    RETRY_DEADLINE_S,
    admin_request,
    error_from_text,
    kafka_python_config,
)
from city.settings import KafkaSettings


def remaining(settings: KafkaSettings, topic: str) -> int:
    """Messages of `topic` (a broker-side name) that the app's group has not yet committed."""
    consumer = KafkaConsumer(**kafka_python_config(settings))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    committed = _committed(settings)
    return sum(max(0, ends[tp] - (committed[tp].offset if tp in committed else 0)) for tp in tps)


def _committed(settings: KafkaSettings) -> dict[TopicPartition, Any]:
    """The group's committed offsets (a new broker creates its offsets topic on the first
    group lookup and answers "coordinator not available" meanwhile: admin_request rides it out)."""
    group = settings.app_id

    def fetch(admin: KafkaAdminClient) -> dict[TopicPartition, Any]:
        offsets: dict[TopicPartition, Any] = admin.list_group_offsets(group).get(group, {})
        return offsets

    return admin_request(settings, f"reading the offsets of group {group!r}", fetch)


def committed_offsets(settings: KafkaSettings) -> dict[TopicPartition, int]:
    """The app's group's committed offset per partition."""
    return {tp: meta.offset for tp, meta in _committed(settings).items()}


def commit_offsets(settings: KafkaSettings, offsets: dict[TopicPartition, int]) -> None:
    """Set the app's group's committed offsets; the group must have no live members."""
    group = settings.app_id

    def commit(admin: KafkaAdminClient) -> None:
        errors = admin.alter_group_offsets(
            group, {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
        )
        failed = {tp: error for tp, error in errors.items() if error not in (None, NoError)}
        if failed:
            tp, error = min(failed.items())
            # Raised, so that a retriable one (the coordinator loading, say) is asked again.
            raise error(f"{len(failed)} partitions refused, first {tp.topic}[{tp.partition}]")

    admin_request(settings, f"committing the offsets of group {group!r}", commit)


def wait_until_consumed(
    settings: KafkaSettings,
    topics: list[str],
    timeout_s: float,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Block until the app's committed offsets reach the end of every partition of `topics`;
    `progress` is told how many messages are left at each look.

    The worker commits only after a checkpoint, so this means every message so far is in
    ClickHouse. Raises BrokerError on timeout, saying how much is left.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = sum(remaining(settings, topic) for topic in topics)
        if progress is not None:
            progress(left)
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"the worker still has {left} messages to process after {timeout_s:.0f}s"
            )
        time.sleep(0.5)


def group_stays_busy(settings: KafkaSettings, within_s: float) -> bool:
    """True when the app's group still has members after `within_s`: a crashed worker's
    membership ends with its session (10 s), a running worker's does not."""
    deadline = time.monotonic() + within_s
    while group_members(settings):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.5)
    return False


def group_members(settings: KafkaSettings, deadline_s: float = RETRY_DEADLINE_S) -> int:
    """How many members the app's group has (0 for a group the broker does not know); an
    answer is also the proof that the broker's group coordinator is up."""
    group = settings.app_id

    def members(admin: KafkaAdminClient) -> int:
        described = admin.describe_groups([group])[group]
        error = error_from_text(described["error"]) if described["error"] else None
        if error is not None and not isinstance(error, GroupIdNotFoundError):
            raise error
        return len(described["members"])

    return admin_request(settings, f"describing group {group!r}", members, deadline_s)
