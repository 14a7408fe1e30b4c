"""The benchmark's input: a fresh set of contract topics, `camera.events` filled once, and the
clean-up of every topic and consumer group the run made.

Every name the run makes (topic prefix, consumer groups, so the groups' internal topics too)
carries one token, `bench<hex>`, so that clean-up deletes exactly what this run created.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson
from confluent_kafka import Producer  # type: ignore[import-untyped]
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from city import topics
from city.profile import load_city_profile
from city.settings import KafkaSettings
from simulator.city import city_sources
from simulator.sources import SimEvent, merged_events
from vtops.kafka.topics import ensure_topics

# A Monday at the morning peak, fixed so that every run sends the same events.
CITY_START = (2025, 9, 15, 7, 0)
SLICE_MS = 60_000
PRODUCER_NAME = "confluent-kafka Producer (librdkafka), idempotent, acks=all, murmur2 keys"
PRODUCER_CONFIG: dict[str, str | int | float | bool] = {
    "enable.idempotence": True,  # exactly N messages, so readers can stop at N
    "acks": "all",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 500_000,
    # The Java client's partitioner (and kafka-python's): the contract's keying.
    "partitioner": "murmur2_random",
}


@dataclass(frozen=True)
class BenchTopic:
    bootstrap: str
    token: str  # in every topic and group name the run makes
    partitions: int

    @classmethod
    def fresh(cls, bootstrap: str, partitions: int) -> BenchTopic:
        return cls(bootstrap, f"bench{uuid.uuid4().hex[:8]}", partitions)

    @property
    def prefix(self) -> str:
        return f"{self.token}."

    @property
    def name(self) -> str:
        return f"{self.prefix}{topics.CAMERA_EVENTS}"

    def group(self, role: str, run: int) -> str:
        return f"{self.token}-{role}-{run}"

    def settings(self, app_id: str | None = None) -> KafkaSettings:
        return KafkaSettings(
            kafka_bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            app_id=app_id or self.token,
            partitions=self.partitions,
        )


@dataclass(frozen=True)
class Fill:
    events: int
    seconds: float
    city_minutes: int  # city time the events span

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def camera_events(events: int, seed: int) -> Iterator[tuple[SimEvent, int]]:
    """The simulator's city traffic from CITY_START on, minute by minute, until `events`;
    each event with the index of its city minute."""
    profile = load_city_profile(None)
    # Only the camera source: the others draw from their own random streams, so the camera
    # events are those a full `vtops simulate` run with this seed would send.
    sources = [s for s in city_sources(profile, seed) if s.topic == topics.CAMERA_EVENTS]
    start_ms = round(datetime(*CITY_START, tzinfo=profile.tz).timestamp() * 1000)
    sent, minute = 0, 0
    while True:
        slice_start = start_ms + minute * SLICE_MS
        for event in merged_events(sources, slice_start, slice_start + SLICE_MS, 1.0):
            yield event, minute
            sent += 1
            if sent == events:
                return
        minute += 1


def create_and_fill(topic: BenchTopic, events: int, seed: int) -> Fill:
    """Create the contract topics, then send `events` camera events as fast as possible."""
    ensure_topics(topic.settings())
    producer = Producer({"bootstrap.servers": topic.bootstrap, **PRODUCER_CONFIG})
    started = time.perf_counter()
    city_minutes = 0
    for sent, (event, minute) in enumerate(camera_events(events, seed)):
        city_minutes = minute + 1
        value, key = orjson.dumps(event.value), event.key.encode()
        while True:
            try:
                producer.produce(topic.name, value=value, key=key)
                break
            except BufferError:  # the local queue is full: let librdkafka send some
                producer.poll(0.05)
        if sent % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    seconds = time.perf_counter() - started
    if left:
        raise RuntimeError(f"{left} camera events still unsent to {topic.name} after 120 s")
    return Fill(events, seconds, city_minutes)


def add_topic_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark takes for its topic: partitions, broker, clean-up."""
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("VTOPS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the topics, groups and data directories"
    )


def end_offsets(topic: BenchTopic) -> dict[int, int]:
    """Partition → end offset of the filled topic; raises if it does not hold what was sent."""
    consumer = KafkaConsumer(bootstrap_servers=topic.bootstrap)
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        return {tp.partition: int(offset) for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def clean_up(topic: BenchTopic, groups: list[str]) -> list[str]:
    """Delete the run's consumer groups and every topic whose name holds its token."""
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    try:
        if groups:
            admin.delete_groups(groups)  # reports, does not raise, groups that never existed
        doomed = sorted(name for name in admin.list_topics() if topic.token in name)
        if doomed:
            admin.delete_topics(doomed, raise_errors=False)
        return doomed
    finally:
        admin.close()
