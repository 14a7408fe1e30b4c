"""Faust's clients and the engine's speak the configured security protocol, with TLS whenever
it says SSL; the real listeners are in test_tls_pipeline.py."""

from __future__ import annotations

import ssl

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr

from city.settings import KafkaSettings
from streams.app import aiokafka_config, broker_credentials

PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_faust_and_the_engine_use_the_configured_protocol_without_a_ca_file(
    protocol: str,
) -> None:
    kafka = KafkaSettings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="city",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    engine = aiokafka_config(kafka)
    faust = credentials_to_aiokafka_auth(broker_credentials(kafka, engine["ssl_context"]))

    assert engine["security_protocol"] == faust["security_protocol"] == protocol
    context = engine["ssl_context"]
    assert faust.get("ssl_context") is context
    assert (context is not None) is protocol.endswith("SSL")
    if isinstance(context, ssl.SSLContext):  # the system's CAs: test_tls_pipeline.py
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
