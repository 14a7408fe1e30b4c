"""Where a re-keyed message's time goes: CPU µs per message, step by step, for payments and portal.

    python -m benchmarks.rekeyed_steps [--events 50000] [--repeats 3]

The per-event budget method of ../shared/research/engine.md: each step of the worker's path
is run alone over the same `--events` messages as benchmarks.rekeyed sends, in this process,
and timed in CPU time (`time.process_time`, so that other processes sharing the machine
weigh less than in wall time); the best of `--repeats` is printed. The stages are the worker's
own (RouteStage, WindowStage) with nothing saved and sinks that keep nothing; the Kafka steps
use the broker at `--bootstrap`: the forwards go through the worker's sink (KafkaRecords under
a Faust producer) to a fresh topic, and are read back with the engine's consumer settings.
Step rows are parts of the totals below them, not additions to them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.rekeyed import steps, tallies
from city.profile import load_city_profile
from sinks.base import Row
from sinks.kafka_topic import KafkaRecords
from streams.app import PRODUCER_BATCH_BYTES
from streams.engine.checkpoint import Cut
from streams.engine.definition import DomainStream
from streams.engine.offline import NothingSaved, discarding_sinks
from streams.engine.route_stage import RouteStage
from streams.engine.skew import reject_far_future
from streams.engine.window_stage import WindowStage
from streams.payments import CashlessPayments
from streams.portal import PortalKpis
from streams.settings import StreamSettings

SLICE = 500  # records a fold gets at a time, as the engine's FOLD_SLICE
PARTITIONS = 6  # of the re-key topic
CUT_EVERY = 10_000  # messages between two cuts (a checkpoint a second at ~10k/s)


def record(
    topic: str, offset: int, key: bytes | None, value: bytes, headers: Any = (), partition: int = 0
) -> ConsumerRecord:
    size = 0 if key is None else len(key)
    return ConsumerRecord(
        topic, partition, offset, 0, 0, key, value, None, size, len(value), list(headers)
    )


def best(repeats: int, run: Callable[[], object]) -> float:
    """Least CPU seconds of `repeats` runs."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def in_process(
    stream: DomainStream[Any, Any], messages: list[tuple[bytes, bytes]], repeats: int
) -> tuple[list[tuple[str, float]], list[Row]]:
    """(step, CPU seconds) of the folds and cuts, and what the router sent to its topic."""
    records = [record("input", n, key, value) for n, (key, value) in enumerate(messages)]
    events = [stream.decode(r.value) for r in records]
    latest_ms = int(time.time() * 1000) + 3_600_000

    def check() -> None:
        for event in events:
            reject_far_future(stream, event, latest_ms)

    values = [r.value for r in records]
    results = [
        ("decode (msgspec, validation)", best(repeats, lambda: [stream.decode(v) for v in values])),
        ("far-future check", best(repeats, check)),
        ("assign (window, route key)", best(repeats, lambda: [stream.assign(e) for e in events])),
    ]
    cuts: list[list[Row]] = []  # what the router sent at each of its cuts

    def route() -> None:
        router = new_router(stream)
        cuts.clear()
        for start in range(0, len(records), CUT_EVERY):
            for at in range(start, min(len(records), start + CUT_EVERY), SLICE):
                router.fold(0, records[at : at + SLICE])
            cut = Cut()
            router.cut(cut, 0.0)
            # Forwards and watermarks: the router's only rows with headers.
            cuts.append([row for rows in cut.writes.values() for row in rows if "headers" in row])

    results.append(("router: fold (decode, check, assign, forward)", best(repeats, route)))
    # Each re-key partition to a window stage partition of its own, as in the worker (its
    # clocks hold what its own records carried), a router's cut read before the next.
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    routed: list[dict[int, list[ConsumerRecord]]] = []
    for rows in cuts:
        by_partition: dict[int, list[ConsumerRecord]] = {}
        for row in rows:
            p = row.get("partition") or 0
            by_partition.setdefault(p, []).append(
                record("by-group", offsets[p], row["key"], row["value"], row["headers"], p)
            )
            offsets[p] += 1
        routed.append(by_partition)
    fold_s = cut_s = 0.0
    for _ in range(repeats):
        windows = new_window_stage(stream)
        folding = cutting = 0.0
        for by_partition in routed:
            began = time.process_time()
            for p, held in by_partition.items():
                for at in range(0, len(held), SLICE):
                    windows.fold(p, held[at : at + SLICE])
            cut_at = time.process_time()
            windows.cut(Cut(), 0.0)
            folding += cut_at - began
            cutting += time.process_time() - cut_at
        fold_s = min(fold_s or folding, folding)
        cut_s = min(cut_s or cutting, cutting)
    forwards = [row for rows in cuts for row in rows]
    results.append(("windows: fold (origin, decode, dedup, fold)", fold_s))
    results.append(("windows: cut (rows, state encoding)", cut_s))
    return results, forwards


def new_router(stream: DomainStream[Any, Any]) -> RouteStage:
    settings = StreamSettings()
    router = RouteStage(
        stream, "input", "by-group", discarding_sinks(), NothingSaved(),
        settings.max_clock_skew_s, settings.idle_partition_s, lambda _t, _p: None,
        lambda _t: PARTITIONS,
    )  # fmt: skip
    asyncio.run(router.assign(0))
    return router


def new_window_stage(stream: DomainStream[Any, Any]) -> WindowStage[Any, Any]:
    settings = StreamSettings()
    windows: WindowStage[Any, Any] = WindowStage(
        stream, "by-group", discarding_sinks(), NothingSaved(), {},
        settings.max_clock_skew_s, lambda _t, _p: None,
    )  # fmt: skip
    for partition in range(PARTITIONS):
        asyncio.run(windows.assign(partition))
    return windows


async def kafka_steps(
    bootstrap: str, forwards: list[Row], scratch: Path
) -> list[tuple[str, float]]:
    """CPU seconds to send the forwards through the worker's sink, and to read them back."""
    topic = f"bench{uuid.uuid4().hex[:8]}.steps.by-group"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vtops-bench")
    admin.create_topics([NewTopic(topic, 6, 1)])
    app = faust.App(
        "vtops-bench-steps",
        broker=f"kafka://{bootstrap}",
        datadir=scratch,
        web_enabled=False,
        producer_acks=-1,  # as the worker's producer
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
    )
    try:
        await app.producer.start()
        sink = KafkaRecords(topic, app.producer)
        started = time.process_time()
        for start in range(0, len(forwards), CUT_EVERY):
            await sink.flush(forwards[start : start + CUT_EVERY])
        produce_s = time.process_time() - started
        await app.producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,  # as the engine's
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(6)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            started, read = time.process_time(), 0
            while read < len(forwards):
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                read += sum(len(records) for records in batches.values())
            consume_s = time.process_time() - started
        finally:
            await consumer.stop()
    finally:
        admin.delete_topics([topic])
        admin.close()
    return [
        ("re-key topic: produce (KafkaRecords, acks=all)", produce_s),
        ("re-key topic: consume (aiokafka getmany)", consume_s),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rekeyed_steps")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = parser.parse_args(argv)
    profile = load_city_profile(None)
    settings = StreamSettings()
    rng = random.Random(72)
    streams: dict[str, tuple[DomainStream[Any, Any], Iterator[tuple[bytes, bytes]]]] = {
        "payments": (
            CashlessPayments(profile, settings.payments_grace_s),
            tallies(args.events, rng),
        ),
        "portal": (PortalKpis(profile, settings.portal_grace_s), steps(args.events, rng)),
    }
    table: dict[str, dict[str, float]] = {}
    for name, (stream, messages) in streams.items():
        results, forwards = in_process(stream, list(messages), args.repeats)
        with tempfile.TemporaryDirectory(prefix="bench-steps-") as scratch:  # Faust's data dir
            results += asyncio.run(kafka_steps(args.bootstrap, forwards, Path(scratch)))
        for step, seconds in results:
            table.setdefault(step, {})[name] = seconds / args.events * 1e6
    print(f"CPU µs per message, best of {args.repeats}, {args.events:,} messages")
    print(f"{'step':<50}{'payments':>10}{'portal':>10}")
    for step, by_stream in table.items():
        print(f"{step:<50}{by_stream['payments']:>10.2f}{by_stream['portal']:>10.2f}")


if __name__ == "__main__":
    main()
