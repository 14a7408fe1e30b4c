"""Where the pipeline's results land: the data directory and the ClickHouse database."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from city.settings import settings_config


class StorageSettings(BaseSettings):
    model_config = settings_config()

    data_dir: Path = Path("./var")
    clickhouse_url: SecretStr | None = None
    clickhouse_database: str = "vtops"

    @property
    def embedded(self) -> bool:
        """ClickHouse runs inside the process (chDB); no server is configured."""
        return self.clickhouse_url is None

    @property
    def clickhouse_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"
