"""Connecting to the city's Kafka cluster: the kafka-python client configuration every tool
shares, an admin client that fails fast, and the one way to send an admin or group request.

`kafka_python_config` is the one place that turns KafkaSettings into client keywords (SASL,
TLS), so the operator's admin client (vtops/kafka/), the simulator's producer and the worker's
aiokafka clients (streams/app.py) connect the same way. `admin_request` is the one place that
rides out the errors a new broker, a loading group coordinator or a moving leader answer for a
few seconds.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, for_code

from city.exceptions import BrokerError
from city.settings import KafkaSettings

logger = logging.getLogger(__name__)

BOOTSTRAP_TIMEOUT_MS = 10_000
# A new single-node broker finds its group coordinator within about 5 s of answering metadata
# (it creates the offsets topic on the first group lookup); a leader moves within seconds.
RETRY_DEADLINE_S = 30.0
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0

Answer = TypeVar("Answer")


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


def admin_request(
    settings: KafkaSettings,
    what: str,
    request: Callable[[KafkaAdminClient], Answer],
    deadline_s: float = RETRY_DEADLINE_S,
    bootstrap_timeout_ms: int = BOOTSTRAP_TIMEOUT_MS,
) -> Answer:
    """`request(admin)`, asked again while it fails with an error Kafka calls retriable
    (coordinator not available or loading, not the coordinator, not the leader, not the
    controller, request timed out, a dropped connection). Backoff from FIRST_BACKOFF_S doubling
    to MAX_BACKOFF_S, for at most `deadline_s`; then, or at once on any other Kafka error, one
    BrokerError naming `what` and the last error. `request` raises the errors a response
    carries as data (per topic, group or partition) for them to count too.

    Each attempt has an admin client of its own: kafka-python keeps a group's coordinator for
    the client's life, so only a new client looks it up again after "not coordinator".
    """
    deadline = time.monotonic() + deadline_s
    backoff = FIRST_BACKOFF_S
    attempts = 0
    while True:
        attempts += 1
        try:
            with admin_client(settings, bootstrap_timeout_ms) as admin:
                return request(admin)
        except KafkaError as error:
            if not error.retriable:
                raise BrokerError(f"{what} failed: {error}") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerError(
                    f"{what} failed {attempts} times in {deadline_s:.0f} s; last error: {error}"
                ) from None
            logger.info(
                "admin request retried request=%r attempt=%d error=%s", what, attempts, error
            )
            time.sleep(min(backoff, left))
            backoff = min(2 * backoff, MAX_BACKOFF_S)


def error_from_text(text: str) -> KafkaError:
    """kafka-python gives some errors of a response as text (a group's, a topic's altered
    config): `[Error 14] CoordinatorLoadInProgressError: ...`. The error again, so that
    admin_request knows whether to ask again."""
    found = re.match(r"\[Error (-?\d+)\] \w+(?:: )?(.*)", text, re.DOTALL)
    if found is None:
        return KafkaError(text)
    detail = found.group(2)
    # The class's own str() puts "[Error N] Name: " back in front.
    error: KafkaError = for_code(int(found.group(1)))(*([detail] if detail else []))
    return error
