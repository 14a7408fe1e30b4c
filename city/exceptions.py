"""The project's root error and the errors of what every component shares: the city profile
and the Kafka cluster. Every error the project raises derives from VtopsError."""

from __future__ import annotations


class VtopsError(Exception):
    """Root of the project's errors: the CLI turns these into one clear line and exit code 1."""


class CityProfileError(VtopsError):
    """The city profile file is missing or does not describe a valid city."""


class BrokerError(VtopsError):
    """The Kafka broker cannot be fetched, started or reached, or refuses a request.

    Raised by the admin client (city/kafka_client.py), the local broker (vtops/kafka/) and the
    simulator's producer."""
