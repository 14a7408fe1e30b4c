"""The pipeline over TLS: topics, the worker (Faust's producer and the engine's consumers) and
the simulator's producer keywords, against a broker of the test's own whose listeners speak
only SSL and SASL_SSL/SCRAM-SHA-512 (issue 11, item 4)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import SecretStr

from city import topics
from city.exceptions import BrokerError
from city.kafka_client import admin_client, kafka_python_config
from city.settings import KafkaSettings
from tests.brokers import SCRAM_PASSWORD, SCRAM_USER, TlsBroker, TlsListeners
from tests.factories import expected_from, random_traffic
from tests.pipeline import PipelineRun

pytestmark = pytest.mark.integration

CAMERAS = ["VT-CAM-001", "VT-CAM-040", "VT-CAM-196"]


@pytest.fixture(scope="module")
def listeners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsListeners]:
    broker = TlsBroker(tmp_path_factory.mktemp("tls-broker"))
    broker.start()
    try:
        yield broker.listeners
    finally:
        broker.stop()


def tls_settings(listeners: TlsListeners, protocol: str, prefix: str) -> KafkaSettings:
    """The test's own clients on the TLS listener of `protocol`, trusting the broker's CA."""
    if protocol == "SSL":
        return KafkaSettings(
            kafka_bootstrap=listeners.ssl,
            topic_prefix=prefix,
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=listeners.ca_file,
        )
    return KafkaSettings(
        kafka_bootstrap=listeners.sasl_ssl,
        topic_prefix=prefix,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=SCRAM_USER,
        kafka_sasl_password=SecretStr(SCRAM_PASSWORD),
        kafka_ssl_cafile=listeners.ca_file,
    )


def worker_env(listeners: TlsListeners, protocol: str) -> dict[str, str]:
    """The worker's and `vtops topics create`'s settings: SSL with the CA file; SASL_SSL with
    none, so the system's CAs, which OpenSSL reads from SSL_CERT_FILE when it is set."""
    if protocol == "SSL":
        return {
            "VTOPS_KAFKA_BOOTSTRAP": listeners.ssl,
            "VTOPS_KAFKA_SECURITY_PROTOCOL": "SSL",
            "VTOPS_KAFKA_SSL_CAFILE": str(listeners.ca_file),
        }
    return {
        "VTOPS_KAFKA_BOOTSTRAP": listeners.sasl_ssl,
        "VTOPS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VTOPS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "VTOPS_KAFKA_SASL_USERNAME": SCRAM_USER,
        "VTOPS_KAFKA_SASL_PASSWORD": SCRAM_PASSWORD,
        "SSL_CERT_FILE": str(listeners.ca_file),
    }


def test_plaintext_clients_are_refused_by_the_tls_listeners(listeners: TlsListeners) -> None:
    """Without this, the test below could pass with TLS off."""
    for address in (listeners.ssl, listeners.sasl_ssl):
        with pytest.raises(BrokerError):
            admin_client(KafkaSettings(kafka_bootstrap=address), bootstrap_timeout_ms=2000)
    wrong = tls_settings(listeners, "SASL_SSL", "").model_copy(
        update={"kafka_sasl_password": SecretStr("not-the-password")}
    )
    with pytest.raises(BrokerError):
        admin_client(wrong, bootstrap_timeout_ms=2000)


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_the_pipeline_runs_over_tls(listeners: TlsListeners, tmp_path: Path, protocol: str) -> None:
    """Topics made, events produced, windows and a dead letter written, every offset
    committed, all over the TLS listener: the worker is given no other address."""
    # The test watches the group's offsets through the broker's PLAINTEXT listener.
    pipeline = PipelineRun(
        data_dir=tmp_path, bootstrap=listeners.plaintext, extra_env=worker_env(listeners, protocol)
    )
    pipeline.create_topics()  # kafka-python's admin client, over TLS
    events = random_traffic(random.Random(11), CAMERAS, minutes=3, count=300)
    producer = KafkaProducer(**kafka_python_config(tls_settings(listeners, protocol, "")))
    for event in events:
        producer.send(
            pipeline.topic(topics.CAMERA_EVENTS),
            key=str(event["camera_id"]).encode(),
            value=orjson.dumps(event),
        )
    producer.send(pipeline.topic(topics.CAMERA_EVENTS), key=CAMERAS[0].encode(), value=b"{")
    producer.flush()
    producer.close()

    worker = pipeline.start_worker()
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS, timeout=120)
    assert pipeline.stop_worker(worker) == 0

    vehicles = sum(row[0] for row in expected_from(events, pipeline.partitions).rows().values())
    assert pipeline.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL") == [(vehicles,)]
    # Faust's producer wrote these, and it too knew only the TLS address.
    written = {
        name: end_offset(listeners, protocol, pipeline.topic(name))
        for name in (topics.dead_letters_of(topics.CAMERA_EVENTS), topics.TRAFFIC_FLOW_1M)
    }
    assert written[topics.dead_letters_of(topics.CAMERA_EVENTS)] == 1
    assert written[topics.TRAFFIC_FLOW_1M] > 0


def end_offset(listeners: TlsListeners, protocol: str, topic: str) -> int:
    """Messages in `topic`, read over TLS."""
    consumer = KafkaConsumer(**kafka_python_config(tls_settings(listeners, protocol, "")))
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()
