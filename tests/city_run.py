"""Forty minutes of the city through Kafka and `vtops worker` into the embedded ClickHouse:
the real run that the dashboards' panels and the leaders' report are tested on.

Office hours, so that every stream has something to say; a dark camera from minute 25 and a
jam at a third of the usual speed from minute 20 (both still open at the end), and three bad
messages for the dead-letter queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from city import topics
from city.profile import CityProfile
from streams.app import consumed_topics
from streams.settings import StreamSettings
from tests.factories_portal import step
from tests.pipeline import PipelineRun
from vtops.kafka.offsets import wait_until_consumed

CITY_MINUTES = 40
OFFLINE_CAMERA = "VT-CAM-005"
JAMMED_CAMERA = "VT-CAM-099"


def city_pipeline(data_dir: Path, profile: CityProfile, database: str) -> PipelineRun:
    """A run configured for `profile` (written to a file beside its data) and `database`."""
    profile_file = data_dir / "city.json"
    profile_file.write_text(profile.model_dump_json(), encoding="utf-8")
    return PipelineRun(
        data_dir=data_dir,
        database=database,
        extra_env={"VTOPS_CITY_PROFILE": str(profile_file), "VTOPS_CLICKHOUSE_DATABASE": database},
    )


def run_the_city(run: PipelineRun, profile: CityProfile) -> datetime:
    """Runs it (topics created, worker stopped at the end); returns the run's end, the last
    09:40 in the city that has passed: the dashboards' "now"."""
    run.create_topics()
    wall_clock = datetime.now(profile.tz)
    now = wall_clock.replace(hour=9, minute=40, second=0, microsecond=0)
    if now > wall_clock:
        # Before 09:40 in the city, today's office hours are still ahead: their events would be
        # far-future dead letters (VTOPS_MAX_CLOCK_SKEW_S). Yesterday's have happened.
        now -= timedelta(days=1)
    simulated = run.vtops(
        "simulate",
        "--no-pace",
        "--duration",
        "60",
        "--rate",
        "25",
        "--max-events",
        "70000",
        "--start",
        (now - timedelta(minutes=CITY_MINUTES)).isoformat(),
        "--incident",
        f"camera_offline:{OFFLINE_CAMERA}:+25m:2h",
        "--incident",
        f"congestion:{JAMMED_CAMERA}:+20m:2h:0.3",
        "--output",
        "json",
    )
    assert simulated.returncode == 0, simulated.stderr
    run.produce(topics.CAMERA_EVENTS, [("VT-CAM-001", b"{bad json"), ("VT-CAM-002", b"[]")])
    run.produce(topics.PAYMENT_COUNTS, [("VT-T-00001", b'{"event_id": 5}')])
    # The simulator's dossiers resolve days after submission, later than forty minutes: one
    # resolved in the run, on time and signed, gives the resolution stats a value to show.
    resolved_at = int((now - timedelta(minutes=5)).timestamp() * 1000)
    resolution = step("run-1", "HS-RUN-1", resolved_at, "resolved", signed=True)
    run.produce_events(
        topics.PORTAL_TRANSACTIONS, "dossier_id", [{**resolution, "due_at": resolved_at + 1}]
    )
    worker = run.start_worker()
    consumed = consumed_topics(run.kafka_settings, StreamSettings(), profile)
    wait_until_consumed(run.kafka_settings, consumed, timeout_s=240)
    assert run.stop_worker(worker) == 0
    return now
