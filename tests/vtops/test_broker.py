"""The local broker and topic creation, against the real broker at VTOPS_KAFKA_BOOTSTRAP, and
a brand-new broker of a test's own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import CoordinatorLoadInProgressError
from typer.testing import CliRunner

from city import topics
from city.kafka_client import admin_client, error_from_text
from city.settings import KafkaSettings
from sinks.settings import StorageSettings
from tests.brokers import HOST, free_ports
from tests.factories import T0, passage
from tests.pipeline import PipelineRun
from vtops.cli.main import app
from vtops.kafka import LocalBroker, describe_contract_topics, ensure_topics
from vtops.kafka.offsets import group_members
from vtops.kafka.retention import RETENTION_MS
from vtops.settings import get_settings


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
    retention = {s.name: s.retention_ms for s in states}
    assert retention[isolated.topic(topics.CAMERA_EVENTS)] == 14 * 86_400_000
    assert retention[isolated.topic(topics.TRAFFIC_ALERTS)] == 7 * 86_400_000


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


@pytest.mark.integration
def test_an_unknown_group_has_no_members_and_a_loading_coordinator_is_asked_again(
    broker: LocalBroker,
) -> None:
    """kafka-python gives a group's error as text: an unknown group is empty (the broker says
    "group id not found"), a loading coordinator is retriable."""
    unknown = KafkaSettings(app_id=f"test-{uuid.uuid4().hex[:10]}")
    assert group_members(unknown, deadline_s=0) == 0

    loading = error_from_text("[Error 14] CoordinatorLoadInProgressError: vtops")
    assert isinstance(loading, CoordinatorLoadInProgressError) and loading.retriable
    assert str(loading) == "[Error 14] CoordinatorLoadInProgressError: vtops"  # said once
    assert not error_from_text("[Error 30] GroupAuthorizationFailedError: vtops").retriable


@pytest.mark.integration
def test_a_worker_started_right_after_a_brand_new_broker_runs_and_counts_events(
    tmp_path: Path,
) -> None:
    """TARGETS R12 on a broker of the test's own: `vtops kafka start`, then `vtops worker`
    (it makes its topics). A new broker answers metadata seconds before its group coordinator
    is up, and the worker's first question is about its group."""
    run = PipelineRun(data_dir=tmp_path, bootstrap=f"{HOST}:{free_ports(2)}", partitions=1)
    broker = LocalBroker(run.kafka_settings, StorageSettings(data_dir=tmp_path))
    worker = None
    try:
        started = run.vtops("kafka", "start")
        assert started.returncode == 0, started.stderr
        assert group_members(run.kafka_settings, deadline_s=0) == 0  # groups answer at once
        worker = run.start_worker()
        run.wait_until_assigned(worker)
        camera = "VT-CAM-001"
        run.produce_events(
            topics.CAMERA_EVENTS,
            "camera_id",
            [passage(f"e{n}", camera, T0 + n * 1000) for n in range(20)],
        )
        run.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=60)
        assert run.stop_worker(worker) == 0
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        broker.stop(timeout_s=0)  # a throwaway broker: no clean shutdown needed
    assert run.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL") == [(20,)]


def _retention_ms(settings: KafkaSettings, names: list[str]) -> dict[str, int]:
    with admin_client(settings) as admin:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, n, {RETENTION_MS: None}) for n in names
        ]
        described = admin.describe_configs(resources, config_filter="all")["topic"]
    return {name: int(described[name][RETENTION_MS]["value"]) for name in names}


@pytest.mark.integration
def test_topics_create_sets_each_kinds_retention_and_brings_existing_topics_to_it(
    isolated: KafkaSettings,
) -> None:
    """Input, re-key, output and dead-letter topics each get their own retention.ms, not the
    broker's 7 days: new ones when made, old ones on the next `vtops topics create`."""
    app_id = f"{isolated.topic_prefix}app"  # its re-key topics start with the prefix too
    env = {"VTOPS_TOPIC_PREFIX": isolated.topic_prefix, "VTOPS_APP_ID": app_id,
           "VTOPS_PARTITIONS": "1", "VTOPS_DLQ_RETENTION_DAYS": "0.5"}  # fmt: skip
    camera = isolated.topic(topics.CAMERA_EVENTS)
    with admin_client(isolated) as admin:  # made before retention was set: the broker's 7 days
        admin.create_topics({camera: {"num_partitions": 1, "replication_factor": 1}})
    day = 86_400_000
    expected = {
        camera: 14 * day,
        isolated.topic(f"{app_id}.portal.by-group"): 14 * day,
        isolated.topic(f"{app_id}.payments.by-group"): 14 * day,
        isolated.topic(topics.TRAFFIC_FLOW_1M): 7 * day,
        isolated.topic(topics.dead_letters_of(topics.PORTAL_TRANSACTIONS)): day // 2,
    }

    def topics_create() -> str:
        get_settings.cache_clear()
        try:
            done = CliRunner().invoke(app, ["topics", "create"], env=env)
        finally:
            get_settings.cache_clear()
        assert done.exit_code == 0, done.output
        return " ".join(done.output.split())

    first = topics_create()
    assert (
        f"created {isolated.topic(topics.TRAFFIC_FLOW_1M)} (1 partitions, retention 7 days)"
        in first
    )
    assert f"retention of {camera} (input): 7 days → 14 days" in first
    assert _retention_ms(isolated, list(expected)) == expected

    with admin_client(isolated) as admin:  # an operator's hand, or an older release
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, camera, {RETENTION_MS: str(day)})]
        )
    assert f"retention of {camera} (input): 1 day → 14 days" in topics_create()
    assert topics_create() == "All topics exist already, with their retention."
    assert _retention_ms(isolated, list(expected)) == expected
