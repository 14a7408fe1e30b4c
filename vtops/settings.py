"""Configuration: one frozen settings model per area, read from `VTOPS_*` variables and `.env`.

The contract (section 1) fixes the variable names; everything else here has a default that
suits a laptop. Secrets are `SecretStr` so that they never reach a log or an error message.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "VTOPS_"
ENV_FILE = ".env"


def _config() -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=ENV_FILE, extra="ignore", frozen=True)


class KafkaSettings(BaseSettings):
    model_config = _config()

    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    app_id: str = "vtops"
    partitions: int = Field(default=6, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    # Production clusters: SASL over TLS. The local broker speaks PLAINTEXT.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    def topic(self, name: str) -> str:
        """The broker-side name of a contract topic, with the run's prefix."""
        return f"{self.topic_prefix}{name}"

    @property
    def host_port(self) -> tuple[str, int]:
        first = self.kafka_bootstrap.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port)


class StorageSettings(BaseSettings):
    model_config = _config()

    data_dir: Path = Path("./var")
    clickhouse_url: SecretStr | None = None
    clickhouse_database: str = "vtops"

    @property
    def clickhouse_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"


class StreamSettings(BaseSettings):
    model_config = _config()

    traffic_grace_s: int = Field(default=120, ge=0)
    payments_grace_s: int = Field(default=900, ge=0)
    portal_grace_s: int = Field(default=172_800, ge=0)
    # How often open windows are upserted and offsets committed; the contract asks for 5 s at most.
    checkpoint_interval_s: float = Field(default=1.0, gt=0, le=5)
    # Un-checkpointed events a worker may hold before it waits for the sinks (backpressure).
    max_pending_events: int = Field(default=200_000, ge=1000)
    # Events further ahead of the wall clock are dead letters: they would close every window.
    max_clock_skew_s: int = Field(default=3600, ge=0)
    # A caught-up input partition of a re-keyed stream that receives nothing for this long
    # stops holding the windows of the other partitions back (contract section 5).
    idle_partition_s: float = Field(default=30.0, gt=0)
    # No records for this long while messages wait: the worker re-seeks, then exits 1.
    stall_timeout_s: float = Field(default=60.0, gt=0)
    city_profile: Path | None = None


class GrafanaSettings(BaseSettings):
    model_config = _config()

    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    # The read-only ClickHouse user Grafana's datasource logs in with.
    grafana_clickhouse_password: SecretStr | None = None


class Settings:
    """All areas together; each area is read once per process."""

    def __init__(self) -> None:
        self.kafka = KafkaSettings()
        self.storage = StorageSettings()
        self.stream = StreamSettings()
        self.grafana = GrafanaSettings()

    def areas(self) -> dict[str, BaseSettings]:
        return {
            "kafka": self.kafka,
            "storage": self.storage,
            "stream": self.stream,
            "grafana": self.grafana,
        }

    def described(self) -> list[tuple[str, str, str]]:
        """(variable, shown value, source) for every setting; secrets are masked."""
        dotenv = dotenv_values(ENV_FILE) if Path(ENV_FILE).is_file() else {}
        rows: list[tuple[str, str, str]] = []
        for area in self.areas().values():
            for name in type(area).model_fields:
                variable = f"{ENV_PREFIX}{name.upper()}"
                value = getattr(area, name)
                shown = "**********" if isinstance(value, SecretStr) else str(value)
                if variable in os.environ:
                    source = "environment"
                elif variable in dotenv:
                    source = ENV_FILE
                else:
                    source = "default"
                rows.append((variable, shown, source))
        return rows


@cache
def get_settings() -> Settings:
    return Settings()
