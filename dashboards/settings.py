"""Where the dashboards go: the Grafana server, and the read-only ClickHouse user it reads as."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from city.settings import settings_config


class GrafanaSettings(BaseSettings):
    model_config = settings_config()

    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    # The read-only ClickHouse user Grafana's datasource logs in with.
    grafana_clickhouse_password: SecretStr | None = None
