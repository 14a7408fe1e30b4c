"""The operator's commands: settings with their sources, and queries on the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from city import topics
from city.exceptions import BrokerError
from sinks.clickhouse.migrations import LATEST
from tests.factories import T0, passage
from tests.pipeline import VTOPS, PipelineRun
from vtops.cli.main import app
from vtops.kafka.offsets import wait_until_consumed
from vtops.settings import SettingsError, get_settings


def run_vtops(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`vtops` in a clean environment: no VTOPS_ variable of the caller's, any case."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("VTOPS_")}
    return subprocess.run(
        [VTOPS, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_settings_show_names_sources_and_masks_secrets() -> None:
    done = run_vtops(
        "settings",
        "show",
        "--output",
        "json",
        VTOPS_PARTITIONS="12",
        VTOPS_KAFKA_SASL_PASSWORD="hunter2",
        VTOPS_CLICKHOUSE_URL="http://vtops:hunter3@ch.example:8123/vtops",
        vtops_app_id="lower-case",
    )
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout and "hunter3" not in done.stdout
    rows = {row["variable"]: row for row in json.loads(done.stdout)}
    assert rows["VTOPS_PARTITIONS"] == {
        "variable": "VTOPS_PARTITIONS",
        "value": 12,
        "source": "environment",
    }
    assert rows["VTOPS_KAFKA_SASL_PASSWORD"]["value"] == "**********"
    # Only the password is hidden: the host is what an operator checks.
    assert rows["VTOPS_CLICKHOUSE_URL"]["value"] == "http://vtops:**********@ch.example:8123/vtops"
    # pydantic-settings reads variables in any case: so does the report of their source.
    assert rows["VTOPS_APP_ID"] == {
        "variable": "VTOPS_APP_ID",
        "value": "lower-case",
        "source": "environment, as vtops_app_id",
    }
    # Real JSON types: numbers, null for unset.
    assert rows["VTOPS_CHECKPOINT_INTERVAL_S"] == {
        "variable": "VTOPS_CHECKPOINT_INTERVAL_S",
        "value": 1.0,
        "source": "default",
    }
    assert rows["VTOPS_KAFKA_SASL_USERNAME"]["value"] is None
    assert rows["VTOPS_CITY_PROFILE"]["value"] is None
    assert rows["VTOPS_DATA_DIR"]["value"] == "var"


@pytest.mark.parametrize(
    "url",
    [
        "http://u:Ab3/s3cret@127.0.0.1:8123/vtops",  # a '/' in the password: "port" Ab3
        "http://u:123/s3cret@127.0.0.1:8123/vtops",  # ... and a port that is a number
        "http://u:Ab3s3cret@127.0.0.1:8123/vtops?password=Ab3s3cret",
        "u:Ab3s3cret@127.0.0.1",
    ],
)
def test_settings_show_masks_a_clickhouse_url_it_cannot_read_whole(url: str) -> None:
    done = run_vtops("settings", "show", "--output", "json", VTOPS_CLICKHOUSE_URL=url)
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout and "Ab3" not in done.stdout
    rows = {row["variable"]: row for row in json.loads(done.stdout)}
    assert "**********" in rows["VTOPS_CLICKHOUSE_URL"]["value"]


@pytest.mark.parametrize(
    ("command", "variable", "value", "rule"),
    [
        (["settings", "show"], "VTOPS_PARTITIONS", "abc", "Input should be a valid integer"),
        (["worker"], "VTOPS_CHECKPOINT_INTERVAL_S", "0", "Input should be greater than 0"),
        (["topics", "list"], "VTOPS_KAFKA_SECURITY_PROTOCOL", "TLS", "Input should be 'PLAINTEXT'"),
        (["simulate"], "vtops_traffic_grace_s", "-5", "greater than or equal to 0"),
        (["demo"], "VTOPS_MAX_PENDING_EVENTS", "10", "greater than or equal to 1000"),
        (["query", "SELECT 1"], "VTOPS_STALL_TIMEOUT_S", "soon", "Input should be a valid number"),
        (["kafka", "status"], "VTOPS_REPLICATION_FACTOR", "0", "greater than or equal to 1"),
        (["migrate"], "VTOPS_KAFKA_SASL_MECHANISM", "GSSAPI", "Input should be 'PLAIN'"),
        (
            ["baselines", "show", "--camera", "VT-CAM-001"],
            "VTOPS_CLICKHOUSE_DATABASE",
            "vtops; DROP TABLE x",
            "String should match pattern",
        ),
    ],
)
def test_a_bad_setting_fails_in_one_line_naming_the_variable_and_the_rule(
    command: list[str], variable: str, value: str, rule: str
) -> None:
    done = run_vtops(*command, **{variable: value})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    upper = variable.upper()
    source = "environment" if variable == upper else f"environment, as {variable}"
    assert done.stderr.startswith(f"error: {upper} ({source}): "), done.stderr
    assert rule in done.stderr
    assert f"'{value}'" not in done.stderr and f"={value}" not in done.stderr


def test_several_bad_settings_are_all_named_on_the_one_line() -> None:
    done = run_vtops("settings", "show", VTOPS_PARTITIONS="abc", VTOPS_IDLE_PARTITION_S="-1")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "VTOPS_PARTITIONS (environment)" in done.stderr
    assert "VTOPS_IDLE_PARTITION_S (environment)" in done.stderr


@pytest.mark.parametrize(
    "command",
    [["settings", "show"], ["topics", "list"], ["kafka", "status"], ["simulate"], ["migrate"]],
)
def test_output_is_table_or_json_and_nothing_else(command: list[str]) -> None:
    done = run_vtops(*command, "--output", "yaml")
    assert done.returncode == 2
    said = " ".join(done.stderr.replace("│", " ").split())  # unwrapped from click's box
    assert "Invalid value for '--output'" in said
    assert "'yaml' is not one of 'table', 'json'" in said


def test_flags_have_no_meaningless_no_twins() -> None:
    """A flag is its one switch: `--holiday`, `--no-pace`; never `--no-holiday` beside it."""
    twins = [
        f"vtops {' '.join(path)} {'/'.join(param.opts + param.secondary_opts)}"
        for path, command in _commands(typer.main.get_command(app), [])
        for param in command.params
        if getattr(param, "secondary_opts", None)
    ]
    assert twins == []


def test_help_shows_the_incident_notation_as_written() -> None:
    done = CliRunner().invoke(app, ["simulate", "--help"], terminal_width=200)
    assert done.exit_code == 0
    assert "KIND:CAMERA:START:DURATION[:SIZE]" in done.output


# What `vtops --help` must not import: they take ~1.5 s together, and a command imports them
# when it runs.
HEAVY = ("faust", "pyarrow", "aiohttp", "aiokafka", "kafka", "clickhouse_connect", "chdb")


@pytest.mark.parametrize("command", [["--help"], ["simulate", "--help"], ["archive", "--help"]])
def test_help_imports_no_heavy_module(command: list[str]) -> None:
    script = (
        "import sys\n"
        "from vtops.cli.main import app\n"
        f"try: app({command!r})\n"
        "except SystemExit: pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr.strip() == "[]"


def test_version() -> None:
    done = run_vtops("--version")
    assert done.returncode == 0 and done.stdout == f"vtops {version('vungtau-ops')}\n"


@pytest.mark.integration
def test_query_says_the_store_is_busy_while_the_worker_runs(pipeline: PipelineRun) -> None:
    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", [passage("q1", "VT-CAM-003", T0)])
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    busy = pipeline.vtops("query", "SELECT 1")
    assert busy.returncode == 1
    # Issue 19, item 4: ClickHouse's raw `Code: 76 … Cannot lock file` line came first.
    assert busy.stderr.count("\n") == 1 and "Cannot lock file" not in busy.stderr
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
    assert "no embedded store at" in missing.stderr and "run `vtops migrate`" in missing.stderr
    # Issue 19, item 4: it made an empty store there, and then said the tables were missing.
    assert not (tmp_path / "clickhouse").exists()
    first = vtops("migrate")
    assert first.returncode == 0, first.stderr
    assert f"now at schema version {LATEST}" in first.stdout and "applied 1:" in first.stdout
    again = vtops("migrate")
    assert again.returncode == 0 and f"already at schema version {LATEST}" in again.stdout
    as_json = vtops("migrate", "--output", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "database": "vtops",
        "schema_version": LATEST,
        "applied": [],
    }
    empty = vtops("query", "SELECT count() FROM vtops.dlq_events", "-f", "CSV")
    assert empty.returncode == 0 and empty.stdout == "0\n"


@pytest.mark.integration
def test_simulate_warns_when_the_rate_leaves_no_traffic(pipeline: PipelineRun) -> None:
    low = pipeline.vtops("simulate", "--duration", "1", "--rate", "3", "--output", "json")
    assert low.returncode == 0, low.stderr
    assert "warning: --rate 3 sends no vehicle passages or violations" in low.stderr
    assert "passage" not in json.loads(low.stdout)["by_kind"]
    busy = pipeline.vtops("simulate", "--duration", "1", "--rate", "300", "--output", "json")
    assert busy.returncode == 0 and "warning" not in busy.stderr
    assert json.loads(busy.stdout)["by_kind"]["passage"] > 0


@pytest.mark.integration
def test_waiting_for_the_worker_reports_the_messages_left(pipeline: PipelineRun) -> None:
    """What the demo shows while it waits: the count of messages the group has not committed."""
    pipeline.produce_events(
        topics.CAMERA_EVENTS, "camera_id", [passage(f"w{n}", "VT-CAM-001", T0) for n in range(7)]
    )
    told: list[int] = []
    with pytest.raises(BrokerError, match="still has 7 messages"):
        wait_until_consumed(
            pipeline.kafka_settings,
            [pipeline.topic(topics.CAMERA_EVENTS)],
            timeout_s=0,
            progress=told.append,
        )
    assert told == [7]


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, [*path, name])
    else:
        yield path, command


def test_no_command_turns_a_bad_setting_into_its_own_error() -> None:
    """Every command, present and future: the SettingsError must leave it for the app, which
    prints it in one line with exit code 2 (above); a command that caught it as any VtopsError
    would exit 1. Required arguments get placeholders: settings are read before they are used."""
    runner = CliRunner()
    for path, command in _commands(typer.main.get_command(app), []):
        args = list(path)
        for param in command.params:
            if param.required:
                args += ["x"] if param.param_type_name == "argument" else [param.opts[0], "x"]
        get_settings.cache_clear()
        try:
            done = runner.invoke(app, args, env={"VTOPS_PARTITIONS": "abc"})
        finally:
            get_settings.cache_clear()
        assert isinstance(done.exception, SettingsError), (args, done.output)
