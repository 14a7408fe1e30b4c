"""Connecting to the city's Kafka cluster: the kafka-python client configuration every tool
shares, and an admin client that fails fast.

`kafka_python_config` is the one place that turns KafkaSettings into client keywords (SASL,
TLS), so the operator's admin client (vtops/kafka/), the simulator's producer and the worker's
aiokafka clients (streams/app.py) connect the same way.
"""

from __future__ import annotations

import socket

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from city.exceptions import BrokerError
from city.settings import KafkaSettings

BOOTSTRAP_TIMEOUT_MS = 10_000


def kafka_python_config(settings: KafkaSettings) -> dict[str, object]:
    """Connection keywords for any kafka-python client (admin, producer, consumer)."""
    config: dict[str, object] = {
        "bootstrap_servers": _bootstrap_servers(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        config["sasl_plain_password"] = password.get_secret_value() if password else None
    if settings.kafka_ssl_cafile is not None:
        config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return config


def _bootstrap_servers(settings: KafkaSettings) -> list[str]:
    return [server.strip() for server in settings.kafka_bootstrap.split(",") if server.strip()]


def admin_client(
    settings: KafkaSettings, bootstrap_timeout_ms: int = BOOTSTRAP_TIMEOUT_MS
) -> KafkaAdminClient:
    """A connected admin client; BrokerError (naming the bootstrap, never a secret) if none."""
    if not _any_listening(settings):
        raise BrokerError(
            f"nothing listens at {settings.kafka_bootstrap}; "
            "start the local broker with `vtops kafka start`"
        )
    try:
        return KafkaAdminClient(
            **kafka_python_config(settings),
            client_id="vtops-admin",
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
    except KafkaError as exc:
        raise BrokerError(
            f"no Kafka broker answers at {settings.kafka_bootstrap} ({type(exc).__name__}); "
            "start the local one with `vtops kafka start`"
        ) from exc


def _any_listening(settings: KafkaSettings) -> bool:
    """Fail fast (not after the client's bootstrap timeout) when no server accepts TCP."""
    for server in _bootstrap_servers(settings):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2.0):
                return True
        except (OSError, ValueError):
            continue
    return False
