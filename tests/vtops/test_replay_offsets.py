"""`vtops offsets reset`: the worker resumes where the reset says, with the state it had there,
and writes the rows of the original run again (real broker, worker and embedded ClickHouse)."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer

from city import topics
from city.exceptions import BrokerError
from streams.app import by_group_topic
from streams.engine.records import watermark_header
from tests.factories import MINUTE_MS, T0, passage
from tests.factories_payments import HOUR_MS, tally
from tests.pipeline import BOOTSTRAP, PipelineRun, key_per_partition, partition_of
from tests.streams.test_payments_pipeline import CASHLESS_SQL
from tests.streams.test_traffic_pipeline import flow_rows
from vtops.kafka.offsets import wait_until_consumed
from vtops.replay.archive import read_info
from vtops.replay.positions import positions

pytestmark = pytest.mark.integration

CAMERAS = ["VT-CAM-001", "VT-CAM-002", "VT-CAM-007", "VT-CAM-040", "VT-CAM-099", "VT-CAM-150"]
WARDS = ["phuong-1", "thang-tam", "rach-dua"]


def traffic(first: int, last: int, tag: str) -> list[dict[str, Any]]:
    """Passages of every camera, four a minute, in minutes [first, last) after T0."""
    return [
        passage(f"{tag}-{camera}-{n}", camera, T0 + n * 15_000, ["car", "bus"][n % 2], 30.0 + n)
        for n in range(first * 4, last * 4)
        for camera in CAMERAS
    ]


def tallies(terminals: list[str], starts: list[int], tag: str) -> list[dict[str, Any]]:
    return [
        tally(f"{tag}-{t}-{s}", t, T0 + s, ward=WARDS[i % 3], counts={"cash": i, "vietqr": 2})
        for i, t in enumerate(terminals)
        for s in starts
    ]


def consumed(run: PipelineRun) -> list[str]:
    return [
        run.topic(topics.CAMERA_EVENTS),
        run.topic(topics.PAYMENT_COUNTS),
        by_group_topic(run.kafka_settings, "payments"),
    ]


def wait_drained(run: PipelineRun, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker has committed everything; if not within 90 s, the failure says what the
    worker was doing (a run under load once failed here with nothing to go on)."""
    try:
        wait_until_consumed(run.kafka_settings, consumed(run), 90)
    except BrokerError as error:
        state = "running" if worker.poll() is None else f"exited {worker.returncode}"
        pytest.fail(f"{error}; worker {state}, its log ends:\n{run.log_of(worker)[-4000:]}")


def offsets_shown(run: PipelineRun) -> list[dict[str, Any]]:
    shown = run.vtops("offsets", "show", "--streams", "camera,payments", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    listed: list[dict[str, Any]] = orjson.loads(shown.stdout)
    return listed


def resumes_of(listed: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
    return {(p["topic"], p["partition"]): p["resume"] for p in listed}


def resumes(run: PipelineRun) -> dict[tuple[str, int], int]:
    return resumes_of(offsets_shown(run))


def test_a_reset_to_a_time_makes_the_worker_write_the_same_rows_again(
    pipeline: PipelineRun,
) -> None:
    terminals = key_per_partition("VT-T-", pipeline.partitions) * 2
    # Before the reset point: minutes 0-4 of traffic, the first 40 minutes of 07:00 payments.
    before = traffic(0, 5, "a")
    # After it: minute 4 again (its windows straddle the reset point), minutes 5-9, a copy of
    # an event from before (a duplicate across the reset), and payments that close 07:00.
    after = [*traffic(4, 10, "b"), before[-1]]
    paid_before = tallies(terminals, [0, 20 * MINUTE_MS], "a")
    paid_after = [
        *tallies(terminals, [45 * MINUTE_MS, HOUR_MS + 20 * MINUTE_MS], "b"),
        paid_before[-1],
    ]

    worker = pipeline.start_worker()
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", before)
    pipeline.produce_events(topics.PAYMENT_COUNTS, "terminal_id", paid_before)
    time.sleep(0.5)
    reset_at = datetime.now(UTC)
    time.sleep(0.5)
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", after)
    pipeline.produce_events(topics.PAYMENT_COUNTS, "terminal_id", paid_after)
    wait_drained(pipeline, worker)
    assert pipeline.stop_worker(worker) == 0

    flows, cashless = flow_rows(pipeline), pipeline.rows(CASHLESS_SQL)
    assert len(flows) == 10 * len(CAMERAS) and len(cashless) == 2 * len(WARDS)
    listed = offsets_shown(pipeline)
    ends = resumes_of(listed)
    # Issue 19, item 4: after a clean stop nothing waits, partitions come in order, each
    # topic says from when on it keeps messages (issue 15), and at 80 columns no topic name
    # is folded over lines.
    assert [(p["topic"], p["partition"]) for p in listed] == sorted(ends)
    assert [p["lag"] for p in listed] == [0] * len(listed)
    assert all(p["kept_since"] for p in listed)
    pipeline.extra_env["COLUMNS"] = "80"
    table = pipeline.vtops("offsets", "show", "--streams", "camera,payments").stdout.splitlines()
    assert {p["topic"] for p in listed} <= {line.split(" ")[0] for line in table}
    del pipeline.extra_env["COLUMNS"]

    # The reset point is when the later messages were produced: Kafka's clock.
    to = ("--to-datetime", reset_at.isoformat(), "--clock", "kafka")
    dry = pipeline.vtops("offsets", "reset", *to, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "→" in dry.stdout and resumes(pipeline) == ends  # a dry run changes nothing
    reset = pipeline.vtops("offsets", "reset", *to, "--yes")
    assert reset.returncode == 0, reset.stdout + reset.stderr

    moved = resumes(pipeline)
    camera_partitions = [k for k in moved if k[0] == pipeline.topic(topics.CAMERA_EVENTS)]
    # Each input partition resumes at its first message after the reset point; the re-key
    # topic at its end, as the router sends everything from there again.
    assert sum(ends[k] - moved[k] for k in camera_partitions) == len(after)
    by_group = by_group_topic(pipeline.kafka_settings, "payments")
    assert all(moved[k] == ends[k] for k in moved if k[0] == by_group)

    # Rows of every window the later messages touch go; the worker must write them again,
    # those of the straddling windows with their earlier events too.
    with pipeline.store() as client:
        for sql in (
            f"ALTER TABLE vtops.traffic_flow_1m DELETE WHERE window_start >= "
            f"toDateTime({(T0 + 4 * MINUTE_MS) // 1000}) SETTINGS mutations_sync = 2",
            "ALTER TABLE vtops.payments_cashless_1h DELETE WHERE 1 SETTINGS mutations_sync = 2",
        ):
            client.command(sql)
    assert len(flow_rows(pipeline)) == 4 * len(CAMERAS)

    worker = pipeline.start_worker()
    wait_drained(pipeline, worker)
    assert pipeline.stop_worker(worker) == 0
    assert flow_rows(pipeline) == flows
    assert sorted(pipeline.rows(CASHLESS_SQL)) == sorted(cashless)


def test_a_reset_refuses_to_run_under_a_live_worker(pipeline: PipelineRun) -> None:
    worker = pipeline.start_worker()
    try:
        pipeline.wait_until_assigned(worker)
        refused = pipeline.vtops("offsets", "reset", "--to-earliest", "--yes", timeout=60)
    finally:
        assert pipeline.stop_worker(worker) == 0
    assert refused.returncode == 1
    assert "live members" in refused.stderr


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_replay_times_are_event_times_and_a_range_of_all_or_nothing_is_named(
    pipeline: PipelineRun, tmp_path: Path
) -> None:
    """Issue 19, item 2: a reset to 14:06 of data produced hours after its events went to
    offset 0 on every partition without a word, and an export of 14:02-14:10 wrote 0
    messages: both read Kafka's timestamps, where an operator means the events' own time."""
    events = traffic(0, 10, "e")  # produced now, about events of 2024, in event-time order
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", events)
    at = T0 + 6 * MINUTE_MS
    before = Counter(
        partition_of(e["camera_id"], pipeline.partitions) for e in events if e["ts"] < at
    )

    def reset(*args: str) -> tuple[dict[int, int], str]:
        done = pipeline.vtops(
            "offsets", "reset", "--streams", "camera", "--dry-run", "--output", "json", *args
        )
        assert done.returncode == 0, done.stderr
        moves = orjson.loads(done.stdout)["moves"]
        return {m["partition"]: m["resume_after"] for m in moves if not m["rekeyed"]}, done.stderr

    moves, said = reset("--to-datetime", iso(at))
    assert moves == {p: before[p] for p in range(pipeline.partitions)} and not said
    moves, said = reset("--to-datetime", iso(at), "--clock", "kafka")
    assert set(moves.values()) == {0} and "full replay" in said

    def export(since: int, until: int, name: str) -> tuple[Path, str]:
        out = tmp_path / name
        done = pipeline.vtops(
            "archive", "export", "--from", iso(since), "--to", iso(until), "--out", str(out)
        )
        assert done.returncode == 0, done.stderr
        return out, done.stderr

    out, said = export(T0 + 2 * MINUTE_MS, T0 + 4 * MINUTE_MS, "two.parquet")
    kept = sorted(orjson.loads(v)["event_id"] for v in pq.read_table(out)["value"].to_pylist())
    wanted = [e for e in events if T0 + 2 * MINUTE_MS <= e["ts"] < T0 + 4 * MINUTE_MS]
    assert kept == sorted(e["event_id"] for e in wanted) and not said
    info = read_info(out)
    assert info is not None and info.clock == "event"
    assert info.counts == {topics.CAMERA_EVENTS: len(wanted)}
    assert info.source_prefix == pipeline.prefix
    _, said = export(T0 + 60 * MINUTE_MS, T0 + 70 * MINUTE_MS, "none.parquet")
    assert "no input message has its event time in [--from, --to)" in said


def test_the_routers_watermarks_are_not_lag(pipeline: PipelineRun) -> None:
    """Issue 19, item 4: `offsets show` said lag 1 on every payments re-key partition after a
    clean stop: the last checkpoint's watermarks, which no one reads, counted as work."""
    by_group = by_group_topic(pipeline.kafka_settings, "payments")
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for _ in range(2):
        producer.send(by_group, value=b"{}", partition=0, headers=watermark_header())
    producer.send(by_group, value=b"{}", partition=1)  # an event: that is lag
    producer.flush()
    producer.close()
    found = positions(pipeline.kafka_settings, [by_group], {}, frozenset({by_group}))
    assert [(p.partition, p.end, p.lag) for p in found] == [(0, 2, 0), (1, 1, 1), (2, 0, 0)]
