"""R7, what one machine can test of it: two engines of one group share a ClickHouse store (as
workers do with a server); a second joins while events flow, partitions move, and no engine
ever writes a partition it does not hold. The scenario with two `vtops worker`s, one of them
SIGKILLed, runs on the session's ClickHouse server: tests/streams/test_server_workers.py."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from city.kafka_client import admin_client
from city.profile import load_city_profile
from city.settings import KafkaSettings
from sinks.base import BatchSink, Row
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import TABLES, migrate
from sinks.clickhouse.table import ClickHouseTable
from sinks.settings import StorageSettings
from streams.app import aiokafka_config, domain_streams
from streams.engine.checkpoint import StageSinks
from streams.engine.service import StreamEngine
from streams.engine.state_store import StateRow, StateStore
from streams.engine.window_stage import WindowStage
from streams.settings import StreamSettings
from tests.clickhouse_server import own_database, server_storage
from tests.factories import expected_from, random_traffic
from tests.pipeline import BOOTSTRAP, partition_of
from tests.streams.test_store_faults import (
    FLOW_SQL,
    Sent,
    Unwatched,
    flow_by_window,
    produce,
    until_committed,
)
from tests.streams.test_traffic_pipeline import CAMERAS

pytestmark = pytest.mark.integration

DATABASE = "vtops"
PARTITIONS = 3


class Owner:
    """One engine's stage and what it holds; every write it makes is checked against that:
    each partition written must be held from the write's start to its end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.held: set[int] = set()
        self.revokes: Counter[int] = Counter()
        self.trespasses: list[str] = []

    @asynccontextmanager
    async def writing(self, what: str, partitions: set[int]) -> AsyncIterator[None]:
        before = {p: self.revokes[p] for p in partitions}
        yield
        lost = {p for p in partitions if p not in self.held or self.revokes[p] != before[p]}
        if lost:
            self.trespasses.append(f"{self.name} wrote {what} of {lost}, not held throughout")


class OwnedStage(WindowStage[Any, Any]):
    owner: Owner

    async def assign(self, partition: int) -> int | None:
        offset = await super().assign(partition)
        self.owner.held.add(partition)
        return offset

    def revoke(self, partition: int) -> None:
        self.owner.held.discard(partition)
        self.owner.revokes[partition] += 1
        super().revoke(partition)


class OwnedTable(ClickHouseTable):
    """The real table, flow rows checked by their camera's partition; a slow one, so that a
    checkpoint is mostly in flight when partitions move."""

    owner: Owner

    async def write(self, batch: Sequence[Row]) -> None:
        partitions = {partition_of(row["camera_id"], PARTITIONS) for row in batch}
        async with self.owner.writing(self.name, partitions):
            await asyncio.sleep(0.2)
            await super().write(batch)


class OwnedStateStore(StateStore):
    owner: Owner

    async def save(self, rows: list[StateRow]) -> None:
        async with self.owner.writing("state", {int(row[1]) for row in rows}):
            await super().save(rows)


def engine_of(owner: Owner, shared: SharedStore, n: int, topic: str, group: str) -> StreamEngine:
    client, executor, database = shared.clients[n], shared.executors[n], shared.database
    tables: dict[str, BatchSink] = {
        name: ClickHouseTable(client, database, name, executor) for name in TABLES
    }
    flow = OwnedTable(client, database, "traffic_flow_1m", executor)
    flow.owner = owner
    tables["traffic_flow_1m"] = flow
    store = OwnedStateStore(client, database, executor)
    store.owner = owner
    config = aiokafka_config(KafkaSettings(kafka_bootstrap=BOOTSTRAP))
    engine = StreamEngine(
        store,
        config,
        group_id=group,
        checkpoint_interval_s=0.3,
        max_pending_events=2_000,
        stall_timeout_s=600,
        exclusive=False,
    )
    stage = OwnedStage(
        domain_streams(StreamSettings(traffic_grace_s=120), load_city_profile())[0],
        topic,
        StageSinks(tables, Unwatched("out"), Unwatched("dlq")),
        store,
        config,
        max_clock_skew_s=3600,
        highwater=engine.highwater,
    )
    stage.owner = owner
    engine.register([stage])
    return engine


def trickle(topic: str, events: list[dict[str, Any]], chunks: int = 20) -> Sent:
    """Produce in chunks over a few seconds, so that the rebalance falls amid the flow."""
    sent: list[tuple[int, int, dict[str, Any]]] = []
    for n in range(chunks):
        sent += produce(
            topic, events[n * len(events) // chunks : (n + 1) * len(events) // chunks]
        ).events
        time.sleep(0.25)
    return Sent(sent)


@dataclass
class SharedStore:
    """What each of two engines writes through: one client each on a server, as two workers
    have; the embedded store admits one client per process, so they share it there."""

    clients: list[Client]
    executors: list[ThreadPoolExecutor]
    database: str


@pytest.fixture(params=["embedded", "server"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedStore]:
    if request.param == "embedded":
        client = connect(StorageSettings(data_dir=tmp_path))
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        shared = SharedStore([client, client], [executor, executor], DATABASE)
        with _migrated(shared):
            yield shared
        return
    url = request.getfixturevalue("clickhouse_server")
    with own_database(url, "owners") as database:
        shared = SharedStore(
            [connect(server_storage(url)) for _ in range(2)],
            [ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse") for _ in range(2)],
            database,
        )
        with _migrated(shared):
            yield shared


@contextmanager
def _migrated(shared: SharedStore) -> Iterator[None]:
    try:
        migrate(shared.clients[0], shared.database, timezone=load_city_profile().timezone)
        yield
    finally:
        for executor in set(shared.executors):
            executor.shutdown()
        for client in {id(c): c for c in shared.clients}.values():
            client.close()


def test_a_revoked_partition_is_never_written_by_its_old_owner(shared_store: SharedStore) -> None:
    topic, group = f"t{uuid.uuid4().hex[:10]}", f"g{uuid.uuid4().hex[:10]}"
    with admin_client(KafkaSettings(kafka_bootstrap=BOOTSTRAP)) as admin:
        admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    events = random_traffic(random.Random(9), CAMERAS, minutes=30, count=9_000)
    first, second = Owner("first"), Owner("second")
    engines = [engine_of(o, shared_store, n, topic, group) for n, o in enumerate((first, second))]

    async def run() -> Sent:
        await engines[0].start()
        try:
            before = await asyncio.to_thread(produce, topic, events[:3_000])
            await until_committed(group, topic, before)
            # The second joins while the rest flows in: partitions move mid-stream.
            during = asyncio.create_task(asyncio.to_thread(trickle, topic, events[3_000:]))
            await engines[1].start()
            try:
                after = await during
                every = Sent(before.events + after.events)
                await until_committed(group, topic, every)
                assert first.held and second.held, "the group did not share the partitions"
            finally:
                await engines[1].stop()
        finally:
            await engines[0].stop()
        return every

    every = asyncio.run(run())
    assert first.revokes, "no partition moved"
    assert first.trespasses == second.trespasses == []
    flow_sql = FLOW_SQL.replace("vtops.", f"{shared_store.database}.")
    assert flow_by_window(shared_store.clients[0].query(flow_sql).result_rows) == (
        expected_from([e for _, _, e in every.events], PARTITIONS).rows()
    )
