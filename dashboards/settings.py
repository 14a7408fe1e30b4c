"""Where the dashboards go: the Grafana server, and the read-only ClickHouse user it reads as."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from city.settings import settings_config


class GrafanaSettings(BaseSettings):
    model_config = settings_config()

    grafana_url: str | None = Field(
        default=None, description="Grafana's address, for `vtops dashboards push`"
    )
    grafana_token: SecretStr | None = Field(
        default=None, description="a Grafana service account token, for `vtops dashboards push`"
    )
    grafana_clickhouse_password: SecretStr | None = Field(
        default=None,
        description="password of `vtops_grafana`, the read-only ClickHouse user Grafana's "
        "datasource logs in with (`vtops dashboards prepare-store` creates it)",
    )
    # A webhook URL often carries its own token.
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description="where Grafana POSTs alert notifications; `vtops dashboards push` puts it "
        "in the contact point (file provisioning reads it from Grafana's environment)",
    )
    alert_emails: str | None = Field(
        default=None,
        description="addresses Grafana mails alert notifications to, separated by `;`; as "
        "VTOPS_ALERT_WEBHOOK_URL",
    )
