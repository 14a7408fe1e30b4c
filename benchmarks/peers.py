"""P2 and P3: the peer and the ceiling the worker is compared with, each in its own process.

    python -m benchmarks.peers quix --bootstrap H:P --topic T --partitions 6 --events N \
        --group G --state-dir D --output-topic O
    python -m benchmarks.peers aiokafka --bootstrap H:P --topic T --partitions 6 --events N
    python -m benchmarks.peers quix-rekeyed --stream payments|portal --bootstrap H:P --topic T \
        --partitions 6 --events N --group G --state-dir D --output-topic O

Each reads the whole topic from the beginning and prints one JSON line: `events_per_s` over
the reading itself (from the first message in hand to the N-th; startup apart, as P1's steady
rate), `wall_s` from the start of the run call, `peak_rss_mb` of the process. The re-keyed
peer also prints `done_at`, the epoch time its last message was processed, so that its caller
times it from process start as it times the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from quixstreams import Application
from quixstreams.models import TimestampType

# The worker checkpoints (commits) every second; the peer commits as often.
QUIX_COMMIT_INTERVAL_S = 1.0
WINDOW = timedelta(minutes=1)
GRACE = timedelta(seconds=120)


def event_time_ms(value: Any, headers: Any, timestamp: int, kind: TimestampType) -> int:
    """The event's own `ts` (contract: RFC 3339 with offset, or epoch milliseconds)."""
    ts = value["ts"]
    if isinstance(ts, int):
        return ts
    return round(datetime.fromisoformat(ts).timestamp() * 1000)


def run_quix(args: argparse.Namespace) -> dict[str, float]:
    """Per-camera passages per event-time minute, final windows to a topic, as a Quix user
    would write it: tumbling 1 min, grace 120 s, keyed by the message key (camera_id)."""
    processed = 0
    first_s = last_s = 0.0

    def on_processed(topic: str, partition: int, offset: int) -> None:
        nonlocal processed, first_s, last_s
        processed += 1
        if processed == 1:
            first_s = time.perf_counter()
        if processed >= args.events:
            last_s = time.perf_counter()
            app.stop()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=QUIX_COMMIT_INTERVAL_S,
        state_dir=args.state_dir,
        loglevel="WARNING",
        on_message_processed=on_processed,
    )
    source = app.topic(
        args.topic,
        key_deserializer="str",
        value_deserializer="json",
        timestamp_extractor=event_time_ms,
    )
    output = app.topic(args.output_topic, key_serializer="str", value_serializer="json")
    flow = app.dataframe(source)
    flow = flow.filter(lambda event: event.get("kind") == "passage")
    flow = flow.tumbling_window(WINDOW, grace_ms=GRACE).count().final()
    flow.to_topic(output)
    started = time.perf_counter()
    app.run()
    if processed < args.events:
        raise SystemExit(f"quix stopped after {processed} of {args.events} events")
    return _result(args.events, first_s, last_s, started)


# The worker's windows of the re-keyed streams (payments: 1 h by ward and category; portal: a
# day by agency and procedure; grace as the worker's defaults), on UTC days for the peer.
REKEYED = {
    "payments": (("ward", "category"), "period_start", timedelta(hours=1), timedelta(minutes=15)),
    "portal": (("agency", "procedure_code"), "ts", timedelta(days=1), timedelta(days=2)),
}


def run_quix_rekeyed(args: argparse.Namespace) -> dict[str, float]:
    """The re-key path as a Quix user writes it: `group_by` the window group (Quix re-produces
    every message to a repartition topic and reads it back), then a tumbling window summing
    each message's counts, final rows to a topic. Done when every message has been through
    both topics: 2 × N messages processed."""
    fields, time_field, size, grace = REKEYED[args.stream]
    processed = 0
    first_s = last_s = done_at = 0.0

    def on_processed(topic: str, partition: int, offset: int) -> None:
        nonlocal processed, first_s, last_s, done_at
        processed += 1
        if processed == 1:
            first_s = time.perf_counter()
        if processed >= 2 * args.events:
            last_s, done_at = time.perf_counter(), time.time()
            app.stop()

    def count(totals: dict[str, int], value: dict[str, Any]) -> dict[str, int]:
        for method, n in value.get("counts", {"events": 1}).items():
            totals[method] = totals.get(method, 0) + n
        return totals

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=QUIX_COMMIT_INTERVAL_S,
        state_dir=args.state_dir,
        loglevel="WARNING",
        on_message_processed=on_processed,
    )
    source = app.topic(
        args.topic,
        key_deserializer="str",
        value_deserializer="json",
        timestamp_extractor=lambda value, *_: int(value[time_field]),
    )
    output = app.topic(args.output_topic, key_serializer="str", value_serializer="json")
    flow = app.dataframe(source)
    flow = flow.group_by(lambda value: "|".join(value[f] for f in fields), name="by-group")
    windows = flow.tumbling_window(size, grace_ms=grace)
    windows.reduce(count, lambda value: count({}, value)).final().to_topic(output)
    started = time.perf_counter()
    app.run()
    if processed < 2 * args.events:
        raise SystemExit(f"quix stopped after {processed} of {2 * args.events} messages")
    return {**_result(args.events, first_s, last_s, started), "done_at": done_at}


async def bare_loop(args: argparse.Namespace) -> dict[str, float]:
    """The ceiling: consume and decode every value, nothing else; no group, no commits."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    started = time.perf_counter()
    await consumer.start()
    try:
        partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        first_s = time.perf_counter()  # the first fetch's round trip is counted
        count = 0
        while count < args.events:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                count += len(records)
        last_s = time.perf_counter()
    finally:
        await consumer.stop()
    return _result(count, first_s, last_s, started)


def _result(events: int, first_s: float, last_s: float, started: float) -> dict[str, float]:
    return {
        "events": events,
        "events_per_s": events / (last_s - first_s),
        "wall_s": last_s - started,
        "first_event_s": first_s - started,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """This process's VmHWM. Not getrusage's ru_maxrss: Linux carries that over from the
    parent across fork and exec, so it would report the benchmark's own size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    parser.add_argument("peer", choices=["quix", "quix-rekeyed", "aiokafka"])
    parser.add_argument("--stream", choices=sorted(REKEYED))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--group")
    parser.add_argument("--state-dir")
    parser.add_argument("--output-topic")
    args = parser.parse_args(argv)
    if args.peer == "quix":
        result = run_quix(args)
    elif args.peer == "quix-rekeyed":
        result = run_quix_rekeyed(args)
    else:
        result = asyncio.run(bare_loop(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
