"""How far a consumer group has got: used to know when the pipeline has caught up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from city.exceptions import BrokerError
from city.kafka_client import admin_client, kafka_python_config
from city.settings import KafkaSettings

COORDINATOR_WAIT_S = 30


def remaining(settings: KafkaSettings, topic: str) -> int:
    """Messages of `topic` (a broker-side name) that the app's group has not yet committed."""
    consumer = KafkaConsumer(**kafka_python_config(settings))
    admin = admin_client(settings)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
        committed = _committed(admin, settings.app_id)
        return sum(
            max(0, ends[tp] - (committed[tp].offset if tp in committed else 0)) for tp in tps
        )
    finally:
        consumer.close()
        admin.close()


def _committed(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, Any]:
    """The group's committed offsets. A new broker creates its offsets topic on the first
    group lookup and answers "coordinator not available" meanwhile: ask again, for a while."""
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        try:
            offsets: dict[TopicPartition, Any] = admin.list_group_offsets(group).get(group, {})
            return offsets
        except KafkaError as error:
            if not error.retriable or time.monotonic() > deadline:
                raise BrokerError(f"cannot read the offsets of group {group!r}: {error}") from None
            time.sleep(0.5)


def committed_offsets(settings: KafkaSettings) -> dict[TopicPartition, int]:
    """The app's group's committed offset per partition."""
    admin = admin_client(settings)
    try:
        return {tp: meta.offset for tp, meta in _committed(admin, settings.app_id).items()}
    finally:
        admin.close()


def commit_offsets(settings: KafkaSettings, offsets: dict[TopicPartition, int]) -> None:
    """Set the app's group's committed offsets; the group must have no live members."""
    admin = admin_client(settings)
    try:
        errors = admin.alter_group_offsets(
            settings.app_id,
            {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()},
        )
    except KafkaError as error:
        raise BrokerError(f"cannot commit offsets of group {settings.app_id!r}: {error}") from None
    finally:
        admin.close()
    failed = {tp: e for tp, e in errors.items() if e is not None and e.errno != 0}
    if failed:
        raise BrokerError(f"cannot commit offsets of group {settings.app_id!r}: {failed}")


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
    admin = admin_client(settings)
    deadline = time.monotonic() + within_s
    try:
        while True:
            group = admin.describe_groups([settings.app_id])[settings.app_id]
            if not group["members"]:
                return False
            if time.monotonic() > deadline:
                return True
            time.sleep(0.5)
    except KafkaError as error:
        raise BrokerError(f"cannot describe group {settings.app_id!r}: {error}") from None
    finally:
        admin.close()
