"""The soak (TARGETS P5, P1's "lag not growing"): a worker fed live camera events at a fixed rate
for a long time; its RSS and its group's lag sampled all along. Prints numbers; never fails.

    python -m benchmarks.soak [--rate 20000] [--minutes 20] [--sample-s 10] [--warm-up-min 5]

A fresh topic prefix and app id, `vtops worker` on an empty embedded store (or the server at
`--clickhouse-url`), then camera passages produced at `--rate` (`ts` = now, so windows open and
close live, round robin over the profile's cameras, keyed by camera). Every `--sample-s` the
worker's RSS (VmRSS) and lag (messages produced and not yet committed by its group) are read.
Drift is the median RSS of the last minute over that of the first minute after
`--warm-up-min` (windows, baselines and the store's caches fill up first); the lag's trend is
a least-squares slope over the samples after the warm-up, in messages per minute (one
checkpoint's worth of lag is normal).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from confluent_kafka import Producer  # type: ignore[import-untyped]
from kafka.admin import KafkaAdminClient

from benchmarks.latency import BATCH_S, LATENCY_PRODUCER_CONFIG, passage, wait_ready
from benchmarks.topic import BenchTopic, add_topic_options, clean_up, end_offsets
from benchmarks.worker import WorkerFailed, left_in_group, log_tail, start_worker
from city.profile import load_city_profile
from vtops.kafka.topics import ensure_topics

# Batches of 20 ms, uncompressed as the city's producers send: 20 minutes at 20,000/s are
# 24 million events, ~5 GB on the broker's disk.
SOAK_PRODUCER_CONFIG = {**LATENCY_PRODUCER_CONFIG, "linger.ms": 20}


@dataclass(frozen=True)
class Sample:
    at_s: float  # since producing started
    rss_mb: float
    lag: int
    produced: int


def status_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status (VmRSS: now, VmHWM: peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise WorkerFailed(f"no {field} in /proc/{pid}/status")


def slope_per_min(samples: list[Sample]) -> float:
    """Least-squares slope of the lag, in messages per minute."""
    if len(samples) < 2:
        return float("nan")
    xs = [s.at_s / 60 for s in samples]
    ys = [float(s.lag) for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def soak(args: argparse.Namespace, scratch: Path) -> tuple[list[Sample], float, int]:
    """(samples, the worker's peak RSS, its exit code)."""
    cameras = [camera.camera_id for camera in load_city_profile(None).cameras]
    topic = BenchTopic.fresh(args.bootstrap, args.partitions)
    app_id = topic.group("worker", 0)
    ensure_topics(topic.settings())
    producer = Producer({"bootstrap.servers": topic.bootstrap, **SOAK_PRODUCER_CONFIG})
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    extra = {"VTOPS_CLICKHOUSE_URL": args.clickhouse_url} if args.clickhouse_url else {}
    started = time.monotonic()
    worker, log_path = start_worker(topic, app_id, scratch, **extra)
    samples: list[Sample] = []
    try:
        print(f"worker ready in {wait_ready(worker, log_path, started):.1f} s", file=sys.stderr)
        total = round(args.rate * args.minutes * 60)
        began = time.monotonic()
        next_batch, next_sample, produced = began, began + args.sample_s, 0
        while produced < total:
            now = time.monotonic()
            if now >= next_sample:
                if worker.poll() is not None:
                    raise WorkerFailed(f"worker exited {worker.returncode}:\n{log_tail(log_path)}")
                producer.flush(10)  # the lag counts what the broker has
                lag = left_in_group(admin, topic, app_id, end_offsets(topic))
                sample = Sample(now - began, status_mb(worker.pid, "VmRSS"), lag, produced)
                samples.append(sample)
                print(
                    f"  {sample.at_s / 60:5.1f} min  rss {sample.rss_mb:7.1f} MB  lag {lag:>9,}"
                    f"  produced {produced:>11,}",
                    file=sys.stderr,
                    flush=True,
                )
                next_sample += args.sample_s
            if now < next_batch:
                time.sleep(min(next_batch, next_sample) - now)
                continue
            due = min(total, round(args.rate * (now - began)) + 1)
            while produced < due:
                camera_id = cameras[produced % len(cameras)]
                try:
                    producer.produce(
                        topic.name, value=passage(camera_id, int(time.time() * 1000)), key=camera_id
                    )
                except BufferError:
                    producer.poll(0.01)
                    continue
                produced += 1
            producer.poll(0)
            next_batch += BATCH_S
        producer.flush(60)
        peak = status_mb(worker.pid, "VmHWM")
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=60)
    finally:
        admin.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        clean_up(topic, [app_id])
    return samples, peak, exit_code


def report(args: argparse.Namespace, samples: list[Sample], peak: float, exit_code: int) -> None:
    warm = [s for s in samples if s.at_s >= args.warm_up_min * 60]
    first_minute = [s.rss_mb for s in warm if s.at_s < (args.warm_up_min + 1) * 60]
    base = statistics.median(first_minute) if first_minute else float("nan")
    last_minute = [s.rss_mb for s in samples if s.at_s >= samples[-1].at_s - 60]
    end = statistics.median(last_minute) if last_minute else float("nan")
    drift = (end - base) / base * 100
    lags = [s.lag for s in warm]
    achieved = samples[-1].produced / samples[-1].at_s if samples else float("nan")
    print(f"soak: {args.rate:,.0f} camera events/s for {args.minutes:g} min, one worker")
    print(f"  produced at                 {achieved:>12,.0f} events/s")
    print(f"  RSS after warm-up ({args.warm_up_min:g} min)   {base:>12,.1f} MB")
    print(f"  RSS, last minute            {end:>12,.1f} MB")
    print(f"  RSS drift                   {drift:>+12.1f} %   (target ≤ 5 %)")
    print(f"  peak RSS (VmHWM)            {peak:>12,.1f} MB")
    if lags:
        print(
            f"  lag after warm-up: median   {statistics.median(lags):>12,.0f}   max {max(lags):,}"
        )
        print(f"  lag trend after warm-up     {slope_per_min(warm):>+12,.0f} messages/min")
    print(f"  worker exit code on SIGTERM {exit_code:>12}")
    summary = {
        "rate": args.rate,
        "minutes": args.minutes,
        "rss_base_mb": round(base, 1),
        "rss_end_mb": round(end, 1),
        "rss_drift_pct": round(drift, 2),
        "peak_rss_mb": round(peak, 1),
        "lag_slope_per_min": round(slope_per_min(warm), 1),
        "samples": [[round(s.at_s, 1), round(s.rss_mb, 1), s.lag] for s in samples],
        "cpus": os.cpu_count(),
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(orjson.dumps(summary).decode())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    parser.add_argument("--rate", type=float, default=20_000, help="camera events per second")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--warm-up-min", type=float, default=5)
    parser.add_argument("--clickhouse-url", default=None, help="a server; default: embedded")
    add_topic_options(parser)
    args = parser.parse_args(argv)
    # A soak is long: stopped with SIGTERM, it still stops its worker and deletes its topics.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    try:
        samples, peak, exit_code = soak(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(args, samples, peak, exit_code)


if __name__ == "__main__":
    main()
