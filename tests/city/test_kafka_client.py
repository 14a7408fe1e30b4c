"""The kafka-python keywords every client of the city's cluster is built with, and the one
way an admin or group request rides out what a new or busy broker answers."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from kafka.admin import KafkaAdminClient
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    GroupAuthorizationFailedError,
    KafkaError,
    NotLeaderForPartitionError,
)
from pydantic import SecretStr

from city.exceptions import BrokerError
from city.kafka_client import admin_request, kafka_python_config
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


@pytest.mark.integration
def test_an_admin_request_is_asked_again_while_the_broker_answers_retriable_errors(
    broker: str,
) -> None:
    """What a brand-new broker, a loading coordinator or a moving leader answer for a while."""
    answers: list[type[KafkaError]] = [
        CoordinatorNotAvailableError,
        CoordinatorLoadInProgressError,
        NotLeaderForPartitionError,
    ]
    asked: list[KafkaAdminClient] = []

    def request(admin: KafkaAdminClient) -> int:
        asked.append(admin)
        if answers:
            raise answers.pop(0)()
        return len(admin.list_topics())

    assert admin_request(KafkaSettings(kafka_bootstrap=broker), "counting topics", request) > 0
    assert len(asked) == 4
    assert len({id(admin) for admin in asked}) == 4  # a new client each time: a new coordinator


@pytest.mark.integration
def test_an_admin_request_gives_up_after_its_deadline_naming_the_call_and_the_last_error(
    broker: str,
) -> None:
    asked: list[float] = []

    def request(admin: KafkaAdminClient) -> None:
        asked.append(time.monotonic())
        raise CoordinatorLoadInProgressError("still loading")

    began = time.monotonic()
    with pytest.raises(BrokerError) as refused:
        admin_request(KafkaSettings(kafka_bootstrap=broker), "describing group 'g'", request, 1.0)
    took = time.monotonic() - began

    assert str(refused.value).startswith(f"describing group 'g' failed {len(asked)} times in 1 s")
    assert str(refused.value).endswith(
        "last error: [Error 14] CoordinatorLoadInProgressError: still loading"
    )
    # Bounds a slow machine cannot break (each ask connects a new client, 10-300 ms when
    # busy: the count of asks in the second is speed): asked again; waits of 0.1, 0.2, 0.4, …
    # between asks (the last one cut at the deadline), so at most 5 asks however fast; and it
    # gave up soon after the second, not after its default 30 s.
    assert 2 <= len(asked) <= 5
    waits = [b - a for a, b in pairwise(asked)][:-1]
    assert all(wait >= 0.1 * 2**n for n, wait in enumerate(waits)), waits
    assert took < 10, f"gave up after {took:.1f} s, its deadline was 1 s"


@pytest.mark.integration
def test_an_admin_request_fails_at_once_on_an_error_that_asking_again_cannot_fix(
    broker: str,
) -> None:
    asked: list[KafkaAdminClient] = []

    def request(admin: KafkaAdminClient) -> None:
        asked.append(admin)
        raise GroupAuthorizationFailedError("vtops")

    with pytest.raises(BrokerError, match=r"^committing offsets failed: \[Error 30\] Group"):
        admin_request(KafkaSettings(kafka_bootstrap=broker), "committing offsets", request)
    assert len(asked) == 1
