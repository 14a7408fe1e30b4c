"""The operator's commands: settings with their sources, and queries on the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from city import topics
from sinks.clickhouse.migrations import LATEST
from tests.factories import T0, passage
from tests.pipeline import VTOPS, PipelineRun


def test_settings_show_names_sources_and_masks_secrets() -> None:
    env = {**os.environ, "VTOPS_PARTITIONS": "12", "VTOPS_KAFKA_SASL_PASSWORD": "hunter2"}
    shown = subprocess.run(
        [VTOPS, "settings", "show", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "hunter2" not in shown
    rows = {row["variable"]: row for row in json.loads(shown)}
    assert rows["VTOPS_PARTITIONS"] == {
        "variable": "VTOPS_PARTITIONS",
        "value": "12",
        "source": "environment",
    }
    assert rows["VTOPS_KAFKA_SASL_PASSWORD"]["value"] == "**********"
    assert rows["VTOPS_APP_ID"]["source"] == "default"


@pytest.mark.integration
def test_query_says_the_store_is_busy_while_the_worker_runs(pipeline: PipelineRun) -> None:
    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", [passage("q1", "VT-CAM-003", T0)])
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    busy = pipeline.vtops("query", "SELECT 1")
    assert busy.returncode == 1
    assert "in use by another process" in busy.stderr and "stop it first" in busy.stderr
    assert pipeline.stop_worker(worker) == 0
    done = pipeline.vtops(
        "query", "SELECT camera_id, vehicles FROM vtops.traffic_flow_1m FINAL", "--format", "CSV"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == '"VT-CAM-003",1\n'
    bad = pipeline.vtops("query", "SELEC 1")
    assert bad.returncode == 1 and "Syntax error" in bad.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://u:Ab3/s3cret@127.0.0.1:1/vtops",  # a '/' in the password: "port" Ab3
        "http://u:Ab3@s3cret@127.0.0.1:1/vtops",  # an '@' in the password
        "clickhouse://u:Ab3s3cret@127.0.0.1/vtops",
        "u:Ab3s3cret@127.0.0.1",
    ],
)
def test_a_bad_clickhouse_url_fails_in_one_line_without_its_password(url: str) -> None:
    done = subprocess.run(
        [VTOPS, "query", "SELECT 1"],
        env={**os.environ, "VTOPS_CLICKHOUSE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "Ab3" not in done.stderr + done.stdout and "s3cret" not in done.stderr + done.stdout


def test_query_only_reads_and_migrate_makes_the_schema(tmp_path: Path) -> None:
    env = {**os.environ, "VTOPS_DATA_DIR": str(tmp_path)}

    def vtops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VTOPS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    missing = vtops("query", "SELECT count() FROM vtops.dlq_events")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "run `vtops migrate`" in missing.stderr
    made = vtops("query", "SELECT count() FROM system.databases WHERE name = 'vtops'", "-f", "CSV")
    assert made.stdout == "0\n"
    first = vtops("migrate")
    assert first.returncode == 0, first.stderr
    assert f"now at schema version {LATEST}" in first.stdout and "applied 1:" in first.stdout
    again = vtops("migrate")
    assert again.returncode == 0 and f"already at schema version {LATEST}" in again.stdout
    empty = vtops("query", "SELECT count() FROM vtops.dlq_events", "-f", "CSV")
    assert empty.returncode == 0 and empty.stdout == "0\n"
