"""Throughput of the re-keyed streams through both stages (router, then windows), beside camera.

    python -m benchmarks.rekeyed [--events 200000] [--runs 3] [--partitions 6] [--keep]

`payments.terminal-counts` and `portal.transactions` are filled once each with `--events`
messages in time order (tallies of the profile's terminals over a day, steps of dossiers of the
profile's agencies over a month), keyed as the contract says. Each run starts a `vtops worker`
with a new app id and an empty store and times process start → the group's committed offsets
at the end of the input AND of the internal by-group topic, i.e. every event routed, windowed
and written. Its peer, in the same run and taking turns at going first: Quix Streams doing the
same re-key (`group_by` the window group, through its repartition topic) then a tumbling
window (benchmarks/peers.py), timed from its process start to its 2 × N-th message processed.
Prints medians and the ratio of the medians (TARGETS P8: ≥ 40,000 messages/s each); never fails.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer  # type: ignore[import-untyped]
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from benchmarks import progress
from benchmarks.runs import ROOT
from benchmarks.topic import PRODUCER_CONFIG, BenchTopic, add_topic_options, clean_up
from benchmarks.worker import WorkerFailed, first_fold_s, log_tail, start_worker
from city import topics
from city.profile import load_city_profile
from vtops.kafka.topics import ensure_topics

T0_MS = 1_757_894_400_000  # 2025-09-15T07:00:00+07:00
MINUTE_MS = 60_000
# How often a run asks for the group's committed offsets: the end is known to within this (it
# was 0.5 s: a quarter of a second late on average, where the Quix peer stamps its own end).
POLL_S = 0.1


def tallies(count: int, rng: random.Random) -> Iterator[tuple[bytes, bytes]]:
    """10-minute tallies of the profile's terminals, round after round, in time order."""
    profile = load_city_profile(None)
    terminals = [
        (terminal, payee) for payee in (*profile.merchants, *profile.billers)
        for terminal in payee.terminals
    ]  # fmt: skip
    for n in range(count):
        terminal, payee = terminals[n % len(terminals)]
        start = T0_MS + (n // len(terminals)) * 10 * MINUTE_MS
        value = {
            "event_id": f"t{n}",
            "terminal_id": terminal,
            "merchant_id": payee.merchant_id,
            "ward": payee.ward,
            "category": payee.category,
            "period_start": start,
            "period_end": start + 10 * MINUTE_MS,
            "counts": {"cash": rng.randint(0, 9), "vietqr": rng.randint(0, 9)},
        }
        yield terminal.encode(), orjson.dumps(value)


def steps(count: int, rng: random.Random) -> Iterator[tuple[bytes, bytes]]:
    """Submissions of dossiers at the profile's agencies, a few a minute, in time order."""
    profile = load_city_profile(None)
    agencies = [agency.agency for agency in profile.agencies]
    procedures = [procedure.procedure_code for procedure in profile.procedures]
    for n in range(count):
        value: dict[str, Any] = {
            "event_id": f"s{n}",
            "dossier_id": f"D{n}",
            "agency": agencies[n % len(agencies)],
            "procedure_code": procedures[n % len(procedures)],
            "ts": T0_MS + n * 10_000,
            "status": "submitted",
            "channel": "online",
            "service_level": "full",
            "auth": rng.choice(["vneid_l2", "vneid_l1", "none"]),
            "paid_online": rng.random() < 0.5,
        }
        yield f"D{n}".encode(), orjson.dumps(value)


def fill(topic: BenchTopic, name: str, messages: Iterator[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": topic.bootstrap, **PRODUCER_CONFIG})
    for key, value in messages:
        while True:
            try:
                producer.produce(f"{topic.prefix}{name}", value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError(f"{name}: messages still unsent after 120 s")


def end_offsets(bootstrap: str, names: list[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()]
        return {tp: int(offset) for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def left(admin: KafkaAdminClient, group: str, ends: dict[TopicPartition, int]) -> int:
    committed = admin.list_group_offsets(group).get(group, {})
    done = {tp: meta.offset for tp, meta in committed.items()}
    return sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items())


def one_run(
    topic: BenchTopic, stream: str, run: int, scratch: Path, timeout_s: float
) -> tuple[float, float | None]:
    """Seconds from worker start until both stages of `stream` have committed everything, and
    until its first events were folded (as the worker logged it)."""
    app_id = topic.group(f"{stream}-worker", run)
    contract_topic = topics.PAYMENT_COUNTS if stream == "payments" else topics.PORTAL_TRANSACTIONS
    source = f"{topic.prefix}{contract_topic}"
    by_group = f"{topic.prefix}{app_id}.{stream}.by-group"
    data_dir = scratch / app_id
    data_dir.mkdir()
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    started = time.monotonic()
    worker, log_path = start_worker(topic, app_id, data_dir)
    try:
        ends = end_offsets(topic.bootstrap, [source])
        while left(admin, app_id, ends) > 0:
            _check(worker, log_path, started, timeout_s)
        # The input is done, so every forward is in the by-group topic: wait for the windows.
        ends = end_offsets(topic.bootstrap, [by_group])
        while left(admin, app_id, ends) > 0:
            _check(worker, log_path, started, timeout_s)
        elapsed = time.monotonic() - started
        worker.send_signal(signal.SIGTERM)
        if worker.wait(timeout=60) != 0:
            raise WorkerFailed(f"worker exited with {worker.returncode}:\n{log_tail(log_path)}")
        return elapsed, first_fold_s(log_path)
    finally:
        admin.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def quix_run(topic: BenchTopic, stream: str, events: int, run: int, scratch: Path) -> float:
    """Seconds from the Quix peer's process start to its last message through both topics."""
    contract_topic = topics.PAYMENT_COUNTS if stream == "payments" else topics.PORTAL_TRANSACTIONS
    command = [sys.executable, "-m", "benchmarks.peers", "quix-rekeyed", "--stream", stream]
    command += ["--bootstrap", topic.bootstrap, "--topic", f"{topic.prefix}{contract_topic}"]
    command += ["--partitions", str(topic.partitions), "--events", str(events)]
    command += ["--group", topic.group(f"{stream}-quix", run)]
    command += ["--state-dir", str(scratch / f"quix-{stream}-{run}")]
    command += ["--output-topic", f"{topic.prefix}quix.{stream}"]
    started = time.time()
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120 + events / 500, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"quix {stream} run {run} failed:\n{done.stderr[-3000:]}")
    return float(orjson.loads(lines[-1])["done_at"]) - started


def _check(worker: Any, log_path: Path, started: float, timeout_s: float) -> None:
    if worker.poll() is not None:
        raise WorkerFailed(f"worker exited with {worker.returncode}:\n{log_tail(log_path)}")
    if time.monotonic() - started > timeout_s:
        raise WorkerFailed(f"worker not caught up after {timeout_s:.0f}s:\n{log_tail(log_path)}")
    time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rekeyed")
    parser.add_argument("--events", type=int, default=200_000, help="messages per stream")
    parser.add_argument("--runs", type=int, default=3)
    add_topic_options(parser)
    args = parser.parse_args(argv)
    # One set of topics per stream: a worker reads every input, and only one may hold data.
    streams = {
        "payments": BenchTopic.fresh(args.bootstrap, args.partitions),
        "portal": BenchTopic.fresh(args.bootstrap, args.partitions),
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-rekeyed-"))
    rng = random.Random(72)
    results: dict[str, list[float]] = {stream: [] for stream in streams}
    first_folds: dict[str, list[float | None]] = {stream: [] for stream in streams}
    peers: dict[str, list[float]] = {stream: [] for stream in streams}
    try:
        print(f"filling with {args.events:,} tallies and steps …", file=sys.stderr)
        for topic in streams.values():
            ensure_topics(topic.settings())
        fill(streams["payments"], topics.PAYMENT_COUNTS, tallies(args.events, rng))
        fill(streams["portal"], topics.PORTAL_TRANSACTIONS, steps(args.events, rng))
        for run in range(args.runs):
            for stream, topic in streams.items():
                print(f"  run {run + 1}: {stream} …", file=sys.stderr, flush=True)
                timeout_s = 120 + args.events / 500
                # Taking turns at going first: the broker's page cache favours the second.
                for turn in ("worker", "quix") if run % 2 == 0 else ("quix", "worker"):
                    if turn == "worker":
                        elapsed, first_fold = one_run(topic, stream, run, scratch, timeout_s)
                        results[stream].append(elapsed)
                        first_folds[stream].append(first_fold)
                    else:
                        peers[stream].append(quix_run(topic, stream, args.events, run, scratch))
    finally:
        if not args.keep:
            for stream, topic in streams.items():
                roles = (f"{stream}-worker", f"{stream}-quix")
                clean_up(topic, [topic.group(role, r) for r in range(args.runs) for role in roles])
            shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"re-keyed streams · {args.events:,} messages each · {args.partitions} partitions"
        f" · {args.runs} runs"
    )
    print(f"{'stream':<18}{'start → both stages done, s':>30}{'events/s':>12}  runs (s)")
    for stream in streams:
        for who, seconds in (("worker", results[stream]), ("Quix group_by", peers[stream])):
            median = statistics.median(seconds)
            runs = "  ".join(f"{s:.2f}" for s in seconds)
            name = f"{stream} {who}"
            print(f"{name:<18}{median:>30.2f}{args.events / median:>12,.0f}  {runs}")
        folds = first_folds[stream]
        fold_median = progress.median(folds)
        fold_runs = "  ".join("-" if s is None else f"{s:.2f}" for s in folds)
        fold_cell = "-" if fold_median is None else f"{fold_median:.2f}"
        print(f"{stream} worker start → first event folded, s: {fold_cell}  runs {fold_runs}")
        ratio = statistics.median(peers[stream]) / statistics.median(results[stream])
        print(f"{stream} worker ÷ Quix (medians of events/s): {ratio:.2f}")
    document = {"events": args.events, "runs": results, "first_fold_s": first_folds, "quix": peers}
    print(orjson.dumps(document).decode())


if __name__ == "__main__":
    main()
