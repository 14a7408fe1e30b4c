"""`vtops reprocess`: after a change of grace, the windows of a range are exactly those a fresh
run with the new setting writes, vanished ones gone, at versions above every old one."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from city import topics
from tests.clickhouse_server import own_database
from tests.factories import MINUTE_MS, T0, passage, random_traffic
from tests.factories_payments import HOUR_MS, random_tallies, tally
from tests.pipeline import PipelineRun, closing_keys, partition_of
from tests.streams.test_payments_pipeline import CASHLESS_SQL
from tests.streams.test_traffic_pipeline import CAMERAS, flow_rows

pytestmark = pytest.mark.integration

NEW_GRACE = {"VTOPS_TRAFFIC_GRACE_S": "30", "VTOPS_PAYMENTS_GRACE_S": "300"}
VERSIONS = (
    "SELECT camera_id, toUnixTimestamp(window_start), version FROM vtops.traffic_flow_1m FINAL",
    "SELECT ward, category, toUnixTimestamp(window_start), version "
    "FROM vtops.payments_cashless_1h FINAL",
)


def lone_camera(partitions: int) -> str:
    """A camera outside the test's set that shares VT-CAM-001's input partition."""
    wanted = partition_of("VT-CAM-001", partitions)
    return next(
        c
        for c in (f"VT-CAM-{n:03d}" for n in range(100, 197))
        if c not in CAMERAS and partition_of(c, partitions) == wanted
    )


def closing(partitions: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events on every input partition far after the range: every window in it closes. Two
    cameras on each: one alone may lead its partition's others by half the grace only."""
    by_partition: dict[int, list[str]] = {}
    for camera in reversed([f"VT-CAM-{n:03d}" for n in range(1, 197)]):
        by_partition.setdefault(partition_of(camera, partitions), []).append(camera)
    return (
        [
            passage(f"close-{c}", c, T0 + 60 * MINUTE_MS)
            for cameras in by_partition.values()
            for c in cameras[:2]
        ],
        [tally(f"close-{t}", t, T0 + 3 * HOUR_MS) for t in closing_keys("VT-T-", partitions)],
    )


def city_run(run: PipelineRun) -> None:
    """The same messages in the same order for every run, with a straggler after the rest:
    late by 30 s of grace, in time by 120 s, alone in its window."""
    rng = random.Random(31)
    run.create_topics()
    worker = run.start_worker()
    run.produce_events(
        topics.CAMERA_EVENTS, "camera_id", random_traffic(rng, CAMERAS, minutes=10, count=2_000)
    )
    run.produce_events(
        topics.PAYMENT_COUNTS, "terminal_id", random_tallies(rng, 800, span_ms=74 * MINUTE_MS)
    )
    run.wait_until_checkpointed(topics.CAMERA_EVENTS)
    straggler = passage("straggler", lone_camera(run.partitions), T0 + 8 * MINUTE_MS + 30_000)
    run.produce_events(topics.CAMERA_EVENTS, "camera_id", [straggler])
    cameras, tallies = closing(run.partitions)
    run.produce_events(topics.CAMERA_EVENTS, "camera_id", cameras)
    run.produce_events(topics.PAYMENT_COUNTS, "terminal_id", tallies)
    run.wait_until_checkpointed(topics.CAMERA_EVENTS)
    run.wait_until_checkpointed(topics.PAYMENT_COUNTS)
    assert run.stop_worker(worker) == 0


def in_range(run: PipelineRun) -> tuple[dict[Any, Any], list[Any]]:
    end = (T0 + 30 * MINUTE_MS) // 1000
    flows = {k: v for k, v in flow_rows(run).items() if k[1] < end}
    cashless = sorted(r for r in run.rows(CASHLESS_SQL) if r[2] < (T0 + 2 * HOUR_MS) // 1000)
    return flows, cashless


def test_reprocessing_after_a_change_of_grace_gives_the_rows_of_a_fresh_run(
    broker: str, tmp_path: Any
) -> None:
    old_run = PipelineRun(data_dir=tmp_path / "old")
    (tmp_path / "old").mkdir()
    city_run(old_run)
    old_flows, old_cashless = in_range(old_run)
    old_top = max(row[-1] for sql in VERSIONS for row in old_run.rows(sql))
    lone_window = (lone_camera(old_run.partitions), (T0 + 8 * MINUTE_MS) // 1000)
    assert lone_window in old_flows

    fresh = PipelineRun(data_dir=tmp_path / "fresh", extra_env=NEW_GRACE)
    (tmp_path / "fresh").mkdir()
    city_run(fresh)
    new_flows, new_cashless = in_range(fresh)
    assert lone_window not in new_flows  # the straggler is late with the new grace
    assert new_flows != old_flows and new_cashless != old_cashless

    old_run.extra_env.update(NEW_GRACE)
    since = datetime.fromtimestamp((T0 - 10 * MINUTE_MS) / 1000, UTC).isoformat()
    until = datetime.fromtimestamp((T0 + 2 * HOUR_MS) / 1000, UTC).isoformat()
    for args in (("--dry-run",), ()):
        done = old_run.vtops("reprocess", "--from", since, "--to", until, *args, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "traffic_flow_1m" in done.stdout

    flows, cashless = in_range(old_run)
    assert flows == new_flows
    assert cashless == new_cashless
    # The rows that differ are above every old version; the others were not written again.
    old_rows = {**old_flows, **{r[:3]: r[3:] for r in old_cashless}}
    now = {**flows, **{r[:3]: r[3:] for r in cashless}}
    versions = {row[:-1]: row[-1] for sql in VERSIONS for row in old_run.rows(sql)}
    rewritten = {key for key in now if versions[key] > old_top}
    assert rewritten == {key for key, row in now.items() if old_rows.get(key) != row}
    assert rewritten  # the change of grace changed some windows


@pytest.fixture(params=["embedded", "server"])
def either_store(
    request: pytest.FixtureRequest, broker: str, tmp_path: Path
) -> Iterator[PipelineRun]:
    """A run on the embedded store, then on a ClickHouse server in a database of its own."""
    if request.param == "embedded":
        yield PipelineRun(data_dir=tmp_path)
        return
    url = request.getfixturevalue("clickhouse_server")
    with own_database(url, "reprocess") as database:
        yield PipelineRun(data_dir=tmp_path, clickhouse_url=url, database=database)


def test_reprocessing_with_unchanged_settings_writes_nothing_and_leaves_open_windows(
    either_store: PipelineRun,
) -> None:
    """Issue 19, item 1: on the embedded store no stored window matched its recomputation
    (naive UTC times against the city's zone), so every run deleted the whole range, open
    windows included, and rewrote it; on a server every final row was written again."""
    pipeline = either_store
    cameras = [
        next(
            c
            for c in (f"VT-CAM-{n:03d}" for n in range(1, 197))
            if partition_of(c, pipeline.partitions) == p
        )
        for p in range(pipeline.partitions)
    ]
    # Six minutes on every partition: with 120 s of grace the first three close, three stay open.
    events = [
        passage(f"{c}-{m}-{n}", c, T0 + m * MINUTE_MS + n * 10_000)
        for m in range(6)
        for c in cameras
        for n in range(3)
    ]
    pipeline.create_topics()
    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", events)
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0
    stored = "SELECT *, toUnixTimestamp(window_start) FROM vtops.traffic_flow_1m FINAL ORDER BY ALL"
    before = pipeline.rows(stored)
    assert sorted(r[-3] for r in before) == [0] * 9 + [1] * 9  # final: 3 closed, 3 open each

    since = datetime.fromtimestamp((T0 - 10 * MINUTE_MS) / 1000, UTC).isoformat()
    until = datetime.fromtimestamp((T0 + 10 * MINUTE_MS) / 1000, UTC).isoformat()
    done = pipeline.vtops(
        "reprocess", "--from", since, "--to", until, "--streams", "camera", "--output", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (flow,) = json.loads(done.stdout)["tables"]
    assert flow == {
        "table": "traffic_flow_1m",
        "written": 0,
        "new": 0,
        "changed": 0,
        "unchanged": 9,
        "removed": 0,
        "open_skipped": 9,
    }
    assert pipeline.rows(stored) == before  # versions included: nothing was written
