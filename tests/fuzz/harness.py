"""One fuzzed world: its own topics and data directory, one long-running `vtops worker` that
consumes every batch, a producer, and readers of the dead-letter and output topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from city import topics
from tests.fuzz.messages import SKEW_S, Message
from tests.fuzz.model import Model
from tests.pipeline import PipelineRun
from tests.raw_headers import has_raw_name

OUTPUTS = {
    topics.TRAFFIC_FLOW_1M: topics.CAMERA_EVENTS,
    topics.PAYMENTS_CASHLESS_1H: topics.PAYMENT_COUNTS,
    topics.PORTAL_KPIS_1D: topics.PORTAL_TRANSACTIONS,
}
DEAD_LETTERS = {topics.dead_letters_of(t): t for t in topics.INPUTS}
SETTLE_S = 60  # a batch is consumed well within this, or the worker is stuck


@dataclass
class Sent:
    message: Message
    partition: int
    offset: int


@dataclass
class World:
    """A worker and everything it wrote, read as it goes."""

    run: PipelineRun
    model: Model
    worker: Any = None
    letters: dict[tuple[str, int, int], list[dict[str, Any]]] = field(default_factory=dict)
    # Per output topic, per window key, the row of the highest version.
    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)
    rss_kb: list[int] = field(default_factory=list)
    batches: int = 0
    messages: int = 0
    _reader: Any = None
    _admin: Any = None

    @classmethod
    def start(cls, data_dir: Path) -> World:
        run = PipelineRun(
            data_dir=data_dir,
            extra_env={
                "VTOPS_MAX_CLOCK_SKEW_S": str(SKEW_S),
                "VTOPS_CHECKPOINT_INTERVAL_S": "0.2",
            },
        )
        run.create_topics()
        world = cls(run, Model())
        world.worker = run.start_worker()
        run.wait_until_assigned(world.worker)
        world._admin = KafkaAdminClient(bootstrap_servers=run.bootstrap)
        world._reader = KafkaConsumer(bootstrap_servers=run.bootstrap, enable_auto_commit=False)
        readable = [run.topic(t) for t in (*OUTPUTS, *DEAD_LETTERS)]
        partitions = [TopicPartition(t, p) for t in readable for p in range(run.partitions)]
        world._reader.assign(partitions)
        world._reader.seek_to_beginning(*partitions)
        return world

    def close(self) -> None:
        for client in (self._reader, self._admin):
            if client is not None:
                client.close()
        if self.worker is not None and self.worker.poll() is None:
            self.run.stop_worker(self.worker)

    # -- one batch ----------------------------------------------------------------------

    def send(self, batch: list[Message]) -> list[Sent]:
        raw = [m for m in batch if has_raw_name(m.headers)]
        sent = asyncio.run(self._send([m for m in batch if not has_raw_name(m.headers)]))
        sent += self._send_raw_names(raw)
        for one in sorted(sent, key=lambda s: (s.message.topic, s.partition, s.offset)):
            self.model.add(one.message, one.partition, one.offset)
        self.batches += 1
        self.messages += len(batch)
        return sent

    async def _send(self, batch: list[Message]) -> list[Sent]:
        # aiokafka, not kafka-python: it sends a null header value, as Java and librdkafka
        # producers can.
        producer = AIOKafkaProducer(
            bootstrap_servers=self.run.bootstrap, acks="all", max_request_size=4 * 1024 * 1024
        )
        await producer.start()
        try:
            futures = [
                await producer.send(
                    self.run.topic(m.topic),
                    value=m.value,
                    key=m.key,
                    headers=list(m.headers),
                    timestamp_ms=m.timestamp_ms,
                )
                for m in batch
            ]
            metadata = [await future for future in futures]
        finally:
            await producer.stop()
        return [Sent(m, r.partition, r.offset) for m, r in zip(batch, metadata, strict=True)]

    def _send_raw_names(self, batch: list[Message]) -> list[Sent]:
        """Messages with a header name that is not UTF-8: aiokafka's producer refuses to write
        one, kafka-python's writes whatever `encode` gives (tests/raw_headers.py)."""
        if not batch:
            return []
        producer = KafkaProducer(
            bootstrap_servers=self.run.bootstrap, acks="all", max_request_size=4 * 1024 * 1024
        )
        try:
            futures = [
                producer.send(
                    self.run.topic(m.topic),
                    value=m.value,
                    key=m.key,
                    headers=list(m.headers),
                    timestamp_ms=m.timestamp_ms,
                )
                for m in batch
            ]
            metadata = [future.get(timeout=30) for future in futures]
        finally:
            producer.close()
        return [Sent(m, r.partition, r.offset) for m, r in zip(batch, metadata, strict=True)]

    def settle(self) -> None:
        """Until the worker has committed every input message and every forward they made:
        their dead letters and window rows are on the topics by then."""
        run = self.run
        consumed = [run.topic(t) for t in topics.INPUTS]
        for stream in ("payments", "portal"):
            consumed.append(run.topic(f"{run.app_id}.{stream}.by-group"))
        deadline = time.monotonic() + SETTLE_S
        for topic in consumed:  # inputs first: the forwards they make come meanwhile
            while self._left(topic):
                assert self.worker.poll() is None, (
                    f"the worker exited with {self.worker.returncode}"
                )
                assert time.monotonic() < deadline, f"{topic} not consumed within {SETTLE_S}s"
                time.sleep(0.05)
        self.rss_kb.append(self._rss_kb())

    def _left(self, topic: str) -> int:
        tps = [TopicPartition(topic, p) for p in range(self.run.partitions)]
        ends = self._reader.end_offsets(tps)
        committed = self._admin.list_group_offsets(self.run.app_id).get(self.run.app_id, {})
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)

    def _rss_kb(self) -> int:
        status = Path(f"/proc/{self.worker.pid}/status").read_text()
        return int(
            next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
        )

    def read(self) -> None:
        """Every dead letter and output row written so far."""
        ends = self._reader.end_offsets(list(self._reader.assignment()))
        while any(self._reader.position(tp) < end for tp, end in ends.items()):
            for tp, records in self._reader.poll(timeout_ms=500).items():
                for record in records:
                    self._keep(tp.topic.removeprefix(self.run.prefix), orjson.loads(record.value))

    def _keep(self, topic: str, value: dict[str, Any]) -> None:
        if topic in DEAD_LETTERS:
            source = value["source_topic"].removeprefix(self.run.prefix)
            self.letters.setdefault((source, value["partition"], value["offset"]), []).append(value)
            return
        from tests.fuzz.model import row_key

        source = OUTPUTS[topic]
        rows = self.rows.setdefault(source, {})
        key = row_key(source, value)
        if key not in rows or rows[key]["version"] <= value["version"]:
            rows[key] = value

    def letters_of(self, batch: list[Sent]) -> Iterator[tuple[Sent, list[dict[str, Any]]]]:
        for one in batch:
            yield one, self.letters.get((one.message.topic, one.partition, one.offset), [])
