"""Latency at a steady rate (TARGETS P4): event produced → its window's row visible in
ClickHouse, p99 ≤ flush interval + 2 s. Prints numbers; never fails on a target.

    python -m benchmarks.latency [--rate 2000] [--seconds 60] [--runs 3] [--keep]

Each run makes a fresh topic prefix and app id, starts `vtops worker` and waits for it to be
ready, then produces camera passages (`ts` = now, so windows are live) at `--rate` per second
over all cameras, keyed by `camera_id`. It records, per (camera, minute window), the wall time
of every event produced into it, in order. Meanwhile it reads `traffic.flow-1m` with a new
group: a checkpoint writes its window rows to ClickHouse first and to that topic after, so a
row's arrival there is an upper bound of when it became visible in ClickHouse (the embedded
ClickHouse cannot be read while the worker runs). A row with `vehicles` = n covers the first n
events of its window (one camera is one partition, read in order); every one of them not in an
earlier row gets latency = row arrival − its produce time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer  # type: ignore[import-untyped]
from kafka.admin import KafkaAdminClient

from benchmarks.topic import PRODUCER_CONFIG, BenchTopic, add_topic_options, clean_up, end_offsets
from benchmarks.worker import READY_MARK, WorkerFailed, left_in_group, log_tail, start_worker
from city import topics
from city.clock import MINUTE_MS, aligned_start
from city.profile import load_city_profile
from streams.settings import StreamSettings
from vtops.kafka.topics import ensure_topics

BATCH_S = 0.01  # events are sent in batches every 10 ms: 20 at a time at 2,000/s
READY_TIMEOUT_S = 60.0
SETTLE_S = 2.0  # after "Ready", before the first event: partitions assigned, timers running
# Event → send as soon as possible, as a live camera gateway would; the fill's 20 ms would be
# latency that belongs to the producer, not to the pipeline.
LATENCY_PRODUCER_CONFIG = {**PRODUCER_CONFIG, "linger.ms": 5}

Key = tuple[str, int]  # (camera_id, window start in epoch ms)


@dataclass
class Window:
    produced: list[float] = field(default_factory=list)  # wall time of each event, in order
    seen: int = 0  # events already covered by an earlier row


@dataclass
class Tracker:
    windows: defaultdict[Key, Window] = field(default_factory=lambda: defaultdict(Window))
    latencies: list[float] = field(default_factory=list)  # row arrival − produce, s
    by_create_time: list[float] = field(default_factory=list)  # row's CreateTime − produce, s
    rows: int = 0
    unknown_rows: int = 0  # rows of windows this run never produced into
    produced: int = 0

    @property
    def covered(self) -> int:
        return len(self.latencies)

    def row(self, value: bytes | None, arrived: float, created: float | None) -> None:
        if value is None:
            return
        row = orjson.loads(value)
        self.rows += 1
        start_ms = round(datetime.fromisoformat(row["window_start"]).timestamp() * 1000)
        window = self.windows.get((row["camera_id"], start_ms))
        if window is None:
            self.unknown_rows += 1
            return
        n = min(int(row["vehicles"]), len(window.produced))
        for at in window.produced[window.seen : n]:
            self.latencies.append(arrived - at)
            if created is not None:
                self.by_create_time.append(created - at)
        window.seen = max(window.seen, n)


@dataclass(frozen=True)
class RunResult:
    produced: int
    covered: int
    rows: int
    unknown_rows: int
    achieved_rate: float
    ready_s: float
    p50: float
    p95: float
    p99: float
    max: float
    p99_create_time: float | None
    lag_end_of_produce: int
    lag_end: int
    exit_code: int


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return float("nan")
    rank = max(1, round(q / 100 * len(values) + 0.4999))
    return values[min(rank, len(values)) - 1]


def passage(camera_id: str, ts_ms: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": uuid.uuid4().hex,
            "camera_id": camera_id,
            "ts": ts_ms,
            "kind": "passage",
            "vehicle_class": "motorbike",
            "lane": 1,
            "direction": "inbound",
            "speed_kmh": 32.0,
        }
    )


def wait_ready(worker: subprocess.Popen[bytes], log_path: Path, started: float) -> float:
    while READY_MARK not in log_path.read_text(errors="replace"):
        if worker.poll() is not None:
            raise WorkerFailed(f"worker exited with {worker.returncode}:\n{log_tail(log_path)}")
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise WorkerFailed(
                f"worker not ready after {READY_TIMEOUT_S:.0f}s:\n{log_tail(log_path)}"
            )
        time.sleep(0.1)
    return time.monotonic() - started


def output_consumer(topic: BenchTopic, group: str) -> Any:
    consumer = Consumer(
        {
            "bootstrap.servers": topic.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.subscribe([f"{topic.prefix}{topics.TRAFFIC_FLOW_1M}"])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        consumer.poll(0.1)  # no rows before the first event: nothing is lost here
        if time.monotonic() > deadline:
            raise RuntimeError("the output topic's consumer got no partitions in 30 s")
    return consumer


def consume(consumer: Any, tracker: Tracker, timeout_s: float) -> None:
    messages = consumer.consume(num_messages=1000, timeout=max(0.0, timeout_s))
    arrived = time.time()
    for message in messages:
        if message.error():
            continue
        kind, stamp = message.timestamp()
        created = stamp / 1000 if kind == 1 else None  # TIMESTAMP_CREATE_TIME
        tracker.row(message.value(), arrived, created)


def produce_and_measure(
    producer: Any, consumer: Any, topic: BenchTopic, cameras: list[str], rate: float, seconds: float
) -> tuple[Tracker, float]:
    tracker = Tracker()
    total = round(rate * seconds)
    started = time.monotonic()
    next_batch = started
    while tracker.produced < total:
        now = time.monotonic()
        if now < next_batch:
            consume(consumer, tracker, next_batch - now)
            continue
        due = min(total, round(rate * (now - started)) + 1)
        while tracker.produced < due:
            camera_id = cameras[tracker.produced % len(cameras)]
            wall = time.time()
            ts_ms = int(wall * 1000)
            try:
                producer.produce(topic.name, value=passage(camera_id, ts_ms), key=camera_id)
            except BufferError:
                producer.poll(0.01)
                continue
            tracker.windows[(camera_id, aligned_start(ts_ms, MINUTE_MS))].produced.append(wall)
            tracker.produced += 1
        producer.poll(0)
        next_batch += BATCH_S
    achieved = tracker.produced / (time.monotonic() - started)
    if producer.flush(30):
        raise RuntimeError("camera events still unsent 30 s after the last one")
    return tracker, achieved


def drain(consumer: Any, tracker: Tracker, timeout_s: float) -> None:
    """Read rows until every produced event is in one, or the time is up."""
    deadline = time.monotonic() + timeout_s
    while tracker.covered < tracker.produced and time.monotonic() < deadline:
        consume(consumer, tracker, 0.2)


def one_run(
    run: int, args: argparse.Namespace, cameras: list[str], interval_s: float, scratch: Path
) -> RunResult:
    topic = BenchTopic.fresh(args.bootstrap, args.partitions)
    app_id, group = topic.group("worker", run), topic.group("latency", run)
    data_dir = scratch / f"worker-{run}"
    data_dir.mkdir()
    ensure_topics(topic.settings())
    consumer = output_consumer(topic, group)
    producer = Producer({"bootstrap.servers": topic.bootstrap, **LATENCY_PRODUCER_CONFIG})
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    started = time.monotonic()
    worker, log_path = start_worker(
        topic, app_id, data_dir, VTOPS_CHECKPOINT_INTERVAL_S=str(interval_s)
    )
    try:
        ready_s = wait_ready(worker, log_path, started)
        settle_until = time.monotonic() + SETTLE_S
        while time.monotonic() < settle_until:
            consumer.poll(0.1)
        print(f"  run {run + 1}: worker ready in {ready_s:.1f}s; producing …", file=sys.stderr)
        tracker, achieved = produce_and_measure(
            producer, consumer, topic, cameras, args.rate, args.seconds
        )
        ends = end_offsets(topic)
        lag_end_of_produce = left_in_group(admin, topic, app_id, ends)
        drain(consumer, tracker, 3 * interval_s + 30)
        # Faust commits every interval: give it one more before reading the group's lag.
        time.sleep(interval_s + 0.5)
        lag_end = left_in_group(admin, topic, app_id, ends)
        if worker.poll() is not None:
            raise WorkerFailed(f"worker exited with {worker.returncode}:\n{log_tail(log_path)}")
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=60)
    finally:
        consumer.close()
        admin.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if args.keep:
            print(f"  kept topics {topic.prefix}*, groups {topic.token}-*", file=sys.stderr)
        else:
            clean_up(topic, [app_id, group])
    latencies = sorted(tracker.latencies)
    created = sorted(tracker.by_create_time)
    return RunResult(
        produced=tracker.produced,
        covered=tracker.covered,
        rows=tracker.rows,
        unknown_rows=tracker.unknown_rows,
        achieved_rate=achieved,
        ready_s=ready_s,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        max=latencies[-1] if latencies else float("nan"),
        p99_create_time=percentile(created, 99) if created else None,
        lag_end_of_produce=lag_end_of_produce,
        lag_end=lag_end,
        exit_code=exit_code,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency")
    parser.add_argument("--rate", type=float, default=2_000, help="camera events per second")
    parser.add_argument("--seconds", type=float, default=60, help="how long to produce, per run")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians shown")
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        default=None,
        help="the worker's VTOPS_CHECKPOINT_INTERVAL_S (default: as the settings say, 1 s)",
    )
    add_topic_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    interval_s = args.checkpoint_interval or StreamSettings().checkpoint_interval_s
    cameras = [camera.camera_id for camera in load_city_profile(None).cameras]
    load_start = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    results: list[RunResult] = []
    try:
        for run in range(args.runs):
            results.append(one_run(run, args, cameras, interval_s, scratch))
    finally:
        if args.keep:
            print(f"kept data {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report(args, interval_s, len(cameras), results, load_start)


def number(value: float) -> str:
    return f"{value:,.3f}" if value % 1 else f"{value:,.0f}"


def report(
    args: argparse.Namespace,
    interval_s: float,
    cameras: int,
    results: list[RunResult],
    load_start: tuple[float, float, float],
) -> None:
    target = interval_s + 2
    print(
        f"P4 latency: {args.rate:,.0f} events/s for {args.seconds:g} s over {cameras} cameras, "
        f"{args.runs} run(s); flush (checkpoint) interval {interval_s:g} s, target p99 ≤ "
        f"{target:g} s"
    )
    print("latency = output-topic row arrival − event produced (upper bound of ClickHouse)")
    rows: list[tuple[str, list[float]]] = [
        ("p50 latency, s", [r.p50 for r in results]),
        ("p95 latency, s", [r.p95 for r in results]),
        ("p99 latency, s", [r.p99 for r in results]),
        ("max latency, s", [r.max for r in results]),
        ("p99 to the row's CreateTime, s", [r.p99_create_time or float("nan") for r in results]),
        ("events produced", [float(r.produced) for r in results]),
        ("events found in rows", [float(r.covered) for r in results]),
        ("output rows read", [float(r.rows) for r in results]),
        ("achieved produce rate, events/s", [r.achieved_rate for r in results]),
        ("worker start → 'Ready', s", [r.ready_s for r in results]),
        (
            "worker lag (uncommitted) at end of producing",
            [float(r.lag_end_of_produce) for r in results],
        ),
        ("worker lag (uncommitted) after the last row", [float(r.lag_end) for r in results]),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  {'median':>10}  runs")
    for label, values in rows:
        runs = "  ".join(number(v) for v in values)
        print(f"{label:{width}}  {number(statistics.median(values)):>10}  {runs}")
    p99 = statistics.median(r.p99 for r in results)
    verdict = "yes" if p99 <= target else "NO"
    print(f"median p99 {p99:.3f} s ≤ interval + 2 s = {target:g} s: {verdict}")
    unknown = sum(r.unknown_rows for r in results)
    if unknown:
        print(f"note: {unknown} rows of windows never produced into")
    if any(r.exit_code != 0 for r in results):
        print(f"note: worker exit codes on SIGTERM {[r.exit_code for r in results]}")
    summary = {
        "rate": args.rate,
        "seconds": args.seconds,
        "runs": args.runs,
        "checkpoint_interval_s": interval_s,
        "target_p99_s": target,
        "p99_median_s": round(p99, 4),
        "meets_target": p99 <= target,
        "per_run": [
            {key: round(v, 4) if isinstance(v, float) else v for key, v in vars(r).items()}
            for r in results
        ],
        "cpus": os.cpu_count(),
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(orjson.dumps(summary).decode())


if __name__ == "__main__":
    main()
