"""The kafka-python keywords every client of the city's cluster is built with."""

from __future__ import annotations

from pydantic import SecretStr

from city.kafka_client import kafka_python_config
from city.settings import KafkaSettings


def test_client_config_passes_sasl_only_when_asked() -> None:
    plain = kafka_python_config(KafkaSettings(kafka_bootstrap="a:9092, b:9092"))
    assert plain == {"bootstrap_servers": ["a:9092", "b:9092"], "security_protocol": "PLAINTEXT"}

    sasl = kafka_python_config(
        KafkaSettings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="city",
            kafka_sasl_password=SecretStr("s3cret"),
        )
    )
    assert sasl["sasl_mechanism"] == "SCRAM-SHA-512"
    assert sasl["sasl_plain_username"] == "city"
    assert sasl["sasl_plain_password"] == "s3cret"
