"""How the streams compute: grace per stream, checkpoints, backpressure, clocks, the profile;
and where the worker serves its health and metrics."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings

from city.settings import settings_config


class StreamSettings(BaseSettings):
    model_config = settings_config()

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
    # /metrics, /healthz and /ready of `vtops worker` (Prometheus' port for exporters); 0: none.
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_bind: str = "0.0.0.0"
