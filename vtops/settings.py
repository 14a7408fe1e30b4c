"""Every area's settings together, for the CLI: each area's model lives beside its component
(city/settings.py, sinks/settings.py, streams/settings.py, dashboards/settings.py)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from city.settings import ENV_FILE, ENV_PREFIX, KafkaSettings
from dashboards.settings import GrafanaSettings
from sinks.settings import StorageSettings
from streams.settings import StreamSettings


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
