"""Errors of the `vtops` package; every error the project raises derives from VtopsError."""

from __future__ import annotations


class VtopsError(Exception):
    """Root of the project's errors: the CLI turns these into one clear line and exit code 1."""


class CityProfileError(VtopsError):
    """The city profile file is missing or does not describe a valid city."""


class BrokerError(VtopsError):
    """The local Kafka broker cannot be fetched, started or reached."""
