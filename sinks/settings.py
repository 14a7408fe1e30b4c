"""Where the pipeline's results land: the data directory and the ClickHouse database."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from city.settings import settings_config


class StorageSettings(BaseSettings):
    model_config = settings_config()

    data_dir: Path = Field(
        default=Path("./var"),
        description="the embedded ClickHouse (`clickhouse/`), the local broker (`kafka/`) and "
        "Faust's files",
    )
    clickhouse_url: SecretStr | None = Field(
        default=None,
        description="a ClickHouse server, e.g. `http://user:pass@host:8123/vtops` (only the "
        "password is secret); unset: embedded chDB under the data directory",
    )
    # A plain identifier: commands put it into SQL as a name, where parameters cannot go.
    clickhouse_database: str = Field(
        default="vtops",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="the database of every table the pipeline writes (a plain identifier)",
    )

    # The local server (`vtops clickhouse start`); 0 asks the system for a free port.
    clickhouse_http_port: int = Field(
        default=8123,
        ge=0,
        le=65535,
        description="HTTP port of the local ClickHouse server (`vtops clickhouse start`); 0: a "
        "free one",
    )
    clickhouse_tcp_port: int = Field(
        default=9000,
        ge=0,
        le=65535,
        description="native TCP port of the local ClickHouse server; 0: a free one",
    )

    @property
    def embedded(self) -> bool:
        """ClickHouse runs inside the process (chDB); no server is configured."""
        return self.clickhouse_url is None

    @property
    def clickhouse_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def clickhouse_server_dir(self) -> Path:
        """The local server's config, log, pid and ports (its data is `clickhouse_path`)."""
        return self.data_dir / "clickhouse-server"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"
