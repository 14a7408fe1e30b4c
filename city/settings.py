"""Configuration every layer shares: how settings are read, and the Kafka connection.

Each area has one frozen settings model, read from `VTOPS_*` variables and `.env`, kept beside
the component it configures (sinks/settings.py, streams/settings.py, dashboards/settings.py);
vtops/settings.py gathers them for the CLI. The contract (section 1) fixes the variable names;
everything else has a default that suits a laptop. Secrets are `SecretStr` so that they never
reach a log or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "VTOPS_"
ENV_FILE = ".env"


def settings_config() -> SettingsConfigDict:
    """The configuration of every area's settings model: the same prefix, file and freezing."""
    return SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=ENV_FILE, extra="ignore", frozen=True)


class KafkaSettings(BaseSettings):
    model_config = settings_config()

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated"
    )
    topic_prefix: str = Field(default="", description="prepended to every topic name")
    app_id: str = Field(
        default="vtops",
        description="Faust app id: the consumer group, and part of internal topic names",
    )
    partitions: int = Field(
        default=6, ge=1, le=1024, description="partitions of the topics `vtops topics create` makes"
    )
    replication_factor: int = Field(
        default=1, ge=1, description="replicas of the topics `vtops topics create` makes"
    )
    # How long each kind of topic keeps its messages: README "Retention, on purpose" says why.
    input_retention_days: float = Field(
        default=14,
        gt=0,
        description="retention of the input topics (camera events, tallies, portal steps), days",
    )
    rekey_retention_days: float = Field(
        default=14,
        gt=0,
        description="retention of the worker's re-key topics (`<app id>.<stream>.by-group`), days",
    )
    output_retention_days: float = Field(
        default=7, gt=0, description="retention of the output topics (windows, alerts), days"
    )
    dlq_retention_days: float = Field(
        default=30, gt=0, description="retention of the dead-letter topics (`*.dlq`), days"
    )
    # Production clusters: SASL over TLS. The local broker speaks PLAINTEXT.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="how every Kafka client of vtops connects"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="SASL mechanism, with a `SASL_` protocol"
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (secret: never printed)"
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="CA file for `SSL`/`SASL_SSL`; unset: the system's CAs",
    )

    def topic(self, name: str) -> str:
        """The broker-side name of a contract topic, with the run's prefix."""
        return f"{self.topic_prefix}{name}"

    @property
    def host_port(self) -> tuple[str, int]:
        first = self.kafka_bootstrap.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port)
