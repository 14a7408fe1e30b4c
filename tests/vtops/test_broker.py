"""The local broker and topic creation, against the real broker at VTOPS_KAFKA_BOOTSTRAP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from city import topics
from city.kafka_client import admin_client
from city.settings import KafkaSettings
from sinks.settings import StorageSettings
from vtops.cli.main import app
from vtops.kafka import LocalBroker, describe_contract_topics, ensure_topics


@pytest.fixture(scope="module")
def broker() -> LocalBroker:
    local = LocalBroker(KafkaSettings(), StorageSettings())
    local.start()  # idempotent: reuses a running broker
    return local


@pytest.fixture
def isolated(broker: LocalBroker) -> Iterator[KafkaSettings]:
    """Settings with a fresh topic prefix; its topics are deleted afterwards."""
    settings = KafkaSettings(topic_prefix=f"test-{uuid.uuid4().hex[:10]}.", partitions=3)
    yield settings
    with admin_client(settings) as admin:
        ours = [name for name in admin.list_topics() if name.startswith(settings.topic_prefix)]
        if ours:
            admin.delete_topics(ours)


@pytest.mark.integration
def test_topics_create_is_idempotent_with_prefix_and_partitions(isolated: KafkaSettings) -> None:
    expected = [f"{isolated.topic_prefix}{name}" for name in topics.ALL]

    assert sorted(ensure_topics(isolated)) == sorted(expected)
    assert ensure_topics(isolated) == []

    states = describe_contract_topics(isolated)
    assert [s.name for s in states] == expected
    assert all(s.exists and s.partitions == 3 for s in states)


@pytest.mark.integration
def test_topics_create_makes_only_the_missing_ones(isolated: KafkaSettings) -> None:
    existing = isolated.topic(topics.CAMERA_EVENTS)
    with admin_client(isolated) as admin:
        admin.create_topics({existing: {"num_partitions": 1, "replication_factor": 1}})

    created = ensure_topics(isolated)

    assert existing not in created
    assert len(created) == len(topics.ALL) - 1
    partitions = {s.name: s.partitions for s in describe_contract_topics(isolated)}
    assert partitions[existing] == 1  # left as it was, not recreated


@pytest.mark.integration
def test_status_reports_running(broker: LocalBroker) -> None:
    assert broker.status().state == "running"
    assert broker.start() == "already running"

    result = CliRunner().invoke(app, ["kafka", "status", "--output", "json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["state"] == "running"
    assert report["bootstrap"] == broker.kafka.kafka_bootstrap
