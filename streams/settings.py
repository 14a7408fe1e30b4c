"""How the streams compute: grace per stream, checkpoints, backpressure, clocks, the profile;
and where the worker serves its health and metrics."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings

from city.settings import settings_config


class StreamSettings(BaseSettings):
    model_config = settings_config()

    traffic_grace_s: int = Field(
        default=120, ge=0, description="grace of the traffic windows after their end, seconds"
    )
    payments_grace_s: int = Field(
        default=900, ge=0, description="grace of the payments windows after their end, seconds"
    )
    portal_grace_s: int = Field(
        default=172_800, ge=0, description="grace of the portal windows after their end, seconds"
    )
    # The contract asks for 5 s at most.
    checkpoint_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=5,
        description="how often windows are upserted and offsets committed, seconds",
    )
    max_pending_events: int = Field(
        default=200_000,
        ge=1000,
        description="events a worker holds unwritten before it waits for its sinks (backpressure)",
    )
    # They would close every window.
    max_clock_skew_s: int = Field(
        default=3600,
        ge=0,
        description="events further ahead of the wall clock are dead letters, seconds",
    )
    # Contract section 5.
    idle_partition_s: float = Field(
        default=30.0,
        gt=0,
        description="a caught-up input partition silent this long stops holding re-keyed "
        "windows back, seconds",
    )
    stall_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="no records this long with messages left: re-seek, then exit 1, seconds",
    )
    baselines_refresh_minutes: float = Field(
        default=15.0,
        gt=0,
        description="how often a running worker reads new versions of the traffic baselines "
        "(`vtops baselines refresh`), minutes; a refresh takes effect from an event time at "
        "least twice this far ahead, so every worker has it before the first minute it judges",
    )
    city_profile: Path | None = Field(
        default=None, description="another city's profile file; unset: the packaged Vũng Tàu"
    )
    # Prometheus' port for exporters by default.
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="port of the worker's /metrics, /healthz and /ready; 0: not served. Left "
        "unset, a worker whose 9464 is taken takes the next free port up to 9479 and logs it; "
        "a port you set is used or refused",
    )
    metrics_bind: str = Field(
        default="0.0.0.0", description="address the worker's metrics port listens on"
    )
