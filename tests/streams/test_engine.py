"""The engine in-process: batches of records folded by a stage, checkpoints through sinks that
fail, the real embedded ClickHouse as state store, the real broker for restores."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.partitioner import murmur2
from clickhouse_connect.driver.client import Client
from kafka import KafkaProducer

from city.profile import load_city_profile
from city.settings import KafkaSettings
from schemas.payments import MAX_AMOUNT_VND, MAX_COUNT, METHODS
from sinks.base import Backoff, BatchSink, Row
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import TABLES, migrate
from sinks.clickhouse.table import ClickHouseTable
from sinks.exceptions import SinkError, TransientSinkError
from sinks.kafka_topic import KafkaTopic
from sinks.settings import StorageSettings
from streams.app import aiokafka_config
from streams.engine.checkpoint import Checkpointer, Cut, StageSinks
from streams.engine.definition import Records
from streams.engine.offline import NothingSaved, Unwritten
from streams.engine.records import (
    forwards_of,
    is_watermark,
    origin_header,
    watermark_header,
    watermark_value,
)
from streams.engine.route_stage import RouteStage
from streams.engine.state_store import META_KEY, StateStore, entry, tombstone
from streams.engine.window_stage import WindowStage, fold_event
from streams.payments import CashlessPayments
from streams.traffic.anomaly.baselines import NO_BASELINES
from streams.traffic.flow import TrafficFlow
from tests.factories import MINUTE_MS, T0, passage, status
from tests.factories_payments import tally
from tests.pipeline import BOOTSTRAP

DATABASE = "vtops"
CAMERA = "VT-CAM-001"


@dataclass
class Engine:
    client: Client
    store: StateStore


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    client = connect(StorageSettings(data_dir=tmp_path_factory.mktemp("engine")))
    try:
        migrate(client, DATABASE, timezone=load_city_profile().timezone)
        yield Engine(client, StateStore(client, DATABASE, ThreadPoolExecutor(1)))
    finally:
        client.close()


class Recording(BatchSink):
    """Keeps what it was given; fails `failures` times first (transiently, or for good)."""

    def __init__(self, name: str, failures: int = 0, fatal: bool = False) -> None:
        super().__init__(Backoff(first_s=0.001, max_s=0.001))
        self.name = name
        self.failures = failures
        self.fatal = fatal
        self.rows: list[Row] = []
        self.attempts = 0

    async def write(self, batch: Sequence[Row]) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise (SinkError if self.fatal else TransientSinkError)(f"{self.name} is down")
        self.rows.extend(batch)


@dataclass
class Commits:
    offsets: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def __call__(self, offsets: dict[TopicPartition, int]) -> None:
        self.offsets.append(dict(offsets))


def record(topic: str, offset: int, event: dict[str, Any], partition: int = 0) -> ConsumerRecord:
    """The event as its producer sends it: a camera event keyed by its camera."""
    value = orjson.dumps(event)
    key = event["camera_id"].encode() if "camera_id" in event else None
    return ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, 0, len(value), ())


def camera_stage(
    engine: Engine,
    topic: str,
    window_sink: BatchSink,
    dead_letters: BatchSink | None = None,
    **table_sinks: BatchSink,
) -> WindowStage[Any, Any]:
    tables: dict[str, BatchSink] = {name: Recording(name) for name in TABLES}
    tables["traffic_flow_1m"] = window_sink
    tables.update(table_sinks)
    config = aiokafka_config(KafkaSettings(kafka_bootstrap=BOOTSTRAP))
    return WindowStage(
        TrafficFlow(load_city_profile(), 120, NO_BASELINES),
        topic,
        StageSinks(tables, Recording("out"), dead_letters or Recording("dlq")),
        engine.store,
        config,
        max_clock_skew_s=3600,
        highwater=lambda _topic, _partition: None,
    )


def saved_offset(engine: Engine, topic: str) -> int | None:
    meta = asyncio.run(engine.store.load(topic, 0)).get(META_KEY)
    return None if meta is None else int(meta["offset"])


def passages(count: int, first: int = 0, ids: str = "e{}") -> list[dict[str, Any]]:
    return [passage(ids.format(n), CAMERA, T0 + n * 1000) for n in range(first, first + count)]


def test_offsets_are_committed_only_after_the_state_that_covers_them(engine: Engine) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}"
    windows = Recording("traffic_flow_1m", failures=3)
    stage = camera_stage(engine, topic, windows)
    commits = Commits()

    async def run() -> None:
        await stage.assign(0)
        stage.fold(0, [record(topic, n, e) for n, e in enumerate(passages(10))])
        await Checkpointer([stage], engine.store, commits).run()

    asyncio.run(run())
    assert windows.attempts == 4  # three transient failures, then written
    assert commits.offsets == [{TopicPartition(topic, 0): 10}]
    assert saved_offset(engine, topic) == 9


def test_a_sink_that_fails_for_good_leaves_no_state_and_no_commit(engine: Engine) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}"
    stage = camera_stage(engine, topic, Recording("traffic_flow_1m", failures=1, fatal=True))
    commits = Commits()

    async def run() -> None:
        await stage.assign(0)
        stage.fold(0, [record(topic, n, e) for n, e in enumerate(passages(10))])
        await Checkpointer([stage], engine.store, commits).run()

    with pytest.raises(SinkError):
        asyncio.run(run())
    assert commits.offsets == []
    assert saved_offset(engine, topic) is None


# Ids as dedup holds them both ways (streams/engine/windows.py, `dedup_key`): as themselves,
# and 32 lower-case hex digits as the bytes they spell.
@pytest.mark.parametrize("ids", ["e{}", "{:032x}"])
def test_a_restart_skips_what_it_folded_and_relearns_the_open_windows_ids(
    engine: Engine, broker: str, ids: str
) -> None:
    """The state is saved after ten events; a new stage restores it, re-reads the open
    window's ids from the real topic, skips the replayed offsets and knows a late copy."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    events = passages(10, ids=ids)
    producer = KafkaProducer(bootstrap_servers=broker)
    for event in events:
        producer.send(topic, key=CAMERA.encode(), value=orjson.dumps(event), partition=0)
    producer.flush()
    producer.close()
    records = [record(topic, n, e) for n, e in enumerate(events)]

    async def first_life() -> None:
        stage = camera_stage(engine, topic, Recording("traffic_flow_1m"))
        await stage.assign(0)
        stage.fold(0, records)
        await Checkpointer([stage], engine.store, Commits()).run()

    windows = Recording("traffic_flow_1m")

    async def second_life() -> WindowStage[Any, Any]:
        stage = camera_stage(engine, topic, windows)
        assert await stage.assign(0) == 10
        stage.fold(0, records)  # redelivered: skipped by offset
        copy = record(topic, 10, events[3])  # a re-sent event: a duplicate
        stage.fold(0, [copy, record(topic, 11, passage("new", CAMERA, T0 + 20_000))])
        await Checkpointer([stage], engine.store, Commits()).run()
        return stage

    asyncio.run(first_life())
    asyncio.run(second_life())
    (row,) = windows.rows
    assert (row["vehicles"], row["motorbike"], row["final"]) == (11, 11, 0)
    assert row["version"] == 2 * 11  # the window's last offset, not yet final
    meta = asyncio.run(engine.store.load(topic, 0))[META_KEY]
    assert meta["counters"]["duplicates"] == 1
    assert meta["counters"]["accepted"] == 11
    assert meta["offset"] == 11


def test_a_stale_owner_cannot_overwrite_a_newer_state(engine: Engine) -> None:
    """Two stages hold the same partition (a rebalance in flight): the one behind writes last,
    and the saved state is still the one of the furthest offset."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    ahead, behind = (camera_stage(engine, topic, Recording("w")) for _ in range(2))

    async def run() -> None:
        await ahead.assign(0)
        await behind.assign(0)
        ahead.fold(0, [record(topic, n, e) for n, e in enumerate(passages(20))])
        await Checkpointer([ahead], engine.store, Commits()).run()
        behind.fold(0, [record(topic, n, e) for n, e in enumerate(passages(5))])
        await Checkpointer([behind], engine.store, Commits()).run()

    asyncio.run(run())
    state = asyncio.run(engine.store.load(topic, 0))
    assert state[META_KEY]["offset"] == 19
    (window,) = [value for key, value in state.items() if key.startswith("w:")]
    assert sum(window["acc"]["by_class"].values()) == 20


def test_an_assignment_preloaded_in_one_query_loads_what_each_partition_loads(
    engine: Engine,
) -> None:
    """`preload` reads an assignment's partitions at once: each `load` answers as it would
    alone (latest checkpoint, tombstones gone, nothing for a partition without state), and
    after `forget` the store is read again."""
    topic, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    store = engine.store
    rows = [
        entry(topic, 0, META_KEY, 4, {"offset": 4}),
        entry(topic, 0, "k:a", 4, {"n": 1}),
        entry(topic, 0, "k:b", 4, {"n": 2}),
        entry(topic, 1, META_KEY, 7, {"offset": 7}),
        entry(other, 0, META_KEY, 2, {"offset": 2}),
    ]
    later = [entry(topic, 0, META_KEY, 9, {"offset": 9}), tombstone(topic, 0, "k:a", 9)]
    wanted = [(topic, 0), (topic, 1), (topic, 2), (other, 0)]

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        await store.save(rows)
        await store.save(later)
        alone = [await store.load(t, p) for t, p in wanted]
        await store.preload(wanted)
        preloaded = [await store.load(t, p) for t, p in wanted]
        await store.preload([(topic, 1)])
        store.forget()
        await store.save([entry(topic, 1, META_KEY, 8, {"offset": 8})])
        return alone, preloaded, await store.load(topic, 1)

    alone, preloaded, after_forget = asyncio.run(run())
    assert preloaded == alone
    assert alone[0] == {META_KEY: {"offset": 9}, "k:b": {"n": 2}}
    assert alone[2] == {}
    assert after_forget == {META_KEY: {"offset": 8}}


def test_a_far_future_event_is_a_dead_letter_and_leaves_stream_time_alone(
    engine: Engine,
) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}"
    letters = Recording("dlq")
    stage = camera_stage(engine, topic, Recording("w"), letters)
    future = passage("2099", CAMERA, 4_102_444_799_000)  # 2099-12-31T23:59:59Z
    records = [record(topic, 0, future)]
    records += [record(topic, n + 1, e) for n, e in enumerate(passages(200))]

    async def run() -> None:
        await stage.assign(0)
        stage.fold(0, records)
        await Checkpointer([stage], engine.store, Commits()).run()

    asyncio.run(run())
    meta = asyncio.run(engine.store.load(topic, 0))[META_KEY]
    assert meta["stream_time"] == T0 + 199_000
    counters = meta["counters"]
    assert (counters["late"], counters["invalid"], counters["accepted"]) == (0, 1, 200)
    (letter,) = letters.rows
    assert letter["error"] == "ts: further ahead of the wall clock than VTOPS_MAX_CLOCK_SKEW_S"


def test_a_null_header_value_on_an_invalid_message_is_a_dead_letter_like_any_other(
    engine: Engine,
) -> None:
    """Issue 16, 1: measuring a null header value stopped every stream from the dead-letter
    path. The letter keeps it as null, in the real dlq_events table too."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    letters = Recording("dlq")
    table = ClickHouseTable(engine.client, DATABASE, "dlq_events", ThreadPoolExecutor(1))
    stage = camera_stage(engine, topic, Recording("w"), letters, dlq_events=table)
    bad = b'{"kind":"passage"}'
    headers = [("x", None), ("y", b"")]
    records = [record(topic, n, e) for n, e in enumerate(passages(4))]
    records[1] = ConsumerRecord(topic, 0, 1, 0, 0, None, bad, None, 0, len(bad), headers)

    async def run() -> None:
        await stage.assign(0)
        stage.fold(0, records)
        await Checkpointer([stage], engine.store, Commits()).run()

    asyncio.run(run())
    (letter,) = letters.rows
    assert letter["headers"] == [("x", None), ("y", "")]
    kept = engine.client.query(
        f"SELECT headers FROM {DATABASE}.dlq_events WHERE source_topic = {{t:String}}",
        parameters={"t": topic},
    ).result_rows
    assert kept == [([("x", None), ("y", "")],)]
    counters = asyncio.run(engine.store.load(topic, 0))[META_KEY]["counters"]
    assert (counters["accepted"], counters["invalid"]) == (3, 1)


def test_a_camera_event_keyed_by_anything_but_its_camera_is_a_dead_letter(engine: Engine) -> None:
    """Found by the fuzzer (issue 16): a passage keyed otherwise landed on another partition,
    which opened a second window of the same camera-minute; the two rows overwrote each
    other, and a valid passage was lost."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    letters = Recording("dlq")
    stage = camera_stage(engine, topic, Recording("w"), letters)
    event = passage("e0", CAMERA, T0)
    value = orjson.dumps(event)
    records = [
        ConsumerRecord(topic, 0, n, 0, 0, key, value, None, 0, len(value), ())
        for n, key in enumerate((None, b"VT-CAM-002", CAMERA.encode()))
    ]

    async def run() -> None:
        await stage.assign(0)
        stage.fold(0, records)
        await Checkpointer([stage], engine.store, Commits()).run()

    asyncio.run(run())
    assert [letter["error"] for letter in letters.rows] == [
        "key: must be the event's camera_id (contract section 3)"
    ] * 2
    assert stage.partition_state(0).counters.accepted == 1


def test_a_status_report_from_the_far_future_is_a_dead_letter_and_no_sign_of_life(
    engine: Engine,
) -> None:
    """Issue 16, 2: a heartbeat stamped 2099 became the camera's last sign of life for good,
    so that its outage never raised camera_offline."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    letters, statuses = Recording("dlq"), Recording("camera_status")
    stage = camera_stage(engine, topic, Recording("w"), letters, camera_status=statuses)
    future = status("2099", CAMERA, 4_102_444_799_000)  # 2099-12-31T23:59:59Z
    records = [record(topic, 0, future)]
    records.append(record(topic, 1, status("now", CAMERA, T0)))

    async def run() -> None:
        await stage.assign(0)
        stage.fold(0, records)
        await Checkpointer([stage], engine.store, Commits()).run()

    asyncio.run(run())
    (letter,) = letters.rows
    assert letter["error"] == "ts: further ahead of the wall clock than VTOPS_MAX_CLOCK_SKEW_S"
    # Neither the latest status nor, through it, the anomaly watch ever saw it.
    assert [row["event_id"] for row in statuses.rows] == ["now"]
    assert stage.partition_state(0).counters.invalid == 1


def test_a_payments_window_past_64_bits_is_saved_stored_and_sent_whole(engine: Engine) -> None:
    """Issue 16, 4: about 461 thousand tallies of the largest valid amounts pass 2^64; orjson
    refused such a state inside the checkpoint, and the worker crash-looped on replay."""
    stream = CashlessPayments(load_city_profile(), 900)
    state = stream.new_state()
    largest = tally(
        "largest",
        "VT-T-00001",
        T0,
        counts=dict.fromkeys(METHODS, MAX_COUNT),
        amounts=dict.fromkeys(METHODS, MAX_AMOUNT_VND),
    )
    fold_event(stream, state, 0, orjson.dumps(largest), Records())
    (window,) = state.open_windows()
    tallies = 2**40  # stands for that many tallies like it (folding them would take hours)
    acc = window.acc
    acc.reports, acc.counts = tallies, {m: n * tallies for m, n in acc.counts.items()}
    acc.cash_amount_vnd *= tallies
    acc.cashless_amount_vnd *= tallies
    assert acc.cashless_amount_vnd > 2**64

    saved = orjson.loads(entry("t", 0, "w", 0, stream.acc_to_state(acc))[-1])
    assert stream.acc_from_state(window.group, saved) == acc
    row = {**stream.window_row(window, final=True), "version": 1}
    sent = json.loads(KafkaTopic("t", None, "ward").record(row)["value"])
    assert sent["cashless_amount_vnd"] == acc.cashless_amount_vnd
    assert sent["window_start"] == row["window_start"].isoformat()
    table = ClickHouseTable(engine.client, DATABASE, "payments_cashless_1h", ThreadPoolExecutor(1))
    asyncio.run(table.write([row]))
    stored = engine.client.query(
        f"SELECT reports, card, cashless_amount_vnd FROM {DATABASE}.payments_cashless_1h"
    ).result_rows
    assert stored == [(tallies, MAX_COUNT * tallies, acc.cashless_amount_vnd)]


def test_routed_events_carry_their_input_partitions_stream_time(engine: Engine) -> None:
    """A router ahead on one input partition does not make another partition's events late."""
    source, by_group = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    tables: dict[str, BatchSink] = {name: Recording(name) for name in TABLES}
    forward = Recording("by-group")
    router = RouteStage(
        CashlessPayments(load_city_profile(), 900),
        source,
        by_group,
        StageSinks(tables, forward, Recording("dlq")),
        engine.store,
        max_clock_skew_s=3600,
        idle_partition_s=3600,
        highwater=lambda _topic, _partition: None,
        partitions_of=lambda _topic: 2,
    )
    ahead = tally("ahead", "VT-T-00001", T0 + 5 * 60 * MINUTE_MS)
    behind = tally("behind", "VT-T-00002", T0)

    async def run() -> None:
        await router.assign(0)
        await router.assign(1)
        router.fold(0, [record(source, 0, ahead, partition=0)])
        router.fold(1, [record(source, 0, behind, partition=1)])
        await Checkpointer([router], engine.store, Commits()).run()

    asyncio.run(run())
    # One record of forwards per input partition, both to the group's re-key partition.
    forwards = [
        (row["partition"], forwards_of(row["headers"], row["value"]))
        for row in forward.rows
        if not is_watermark(row["headers"])
    ]
    to = (murmur2(b"phuong-1|grocery") & 0x7FFFFFFF) % 2
    assert forwards == [
        (to, (0, [(0, ahead["period_start"], orjson.dumps(ahead))])),
        (to, (1, [(0, T0, orjson.dumps(behind))])),
    ]
    watermarks = [row for row in forward.rows if is_watermark(row["headers"])]
    assert sorted(row["partition"] for row in watermarks) == [0, 1]


def test_a_record_on_a_rekey_topic_without_a_sound_origin_is_a_dead_letter(
    engine: Engine, broker: str
) -> None:
    """Somebody else's message on an internal topic, or a damaged header: kept as a dead
    letter, the events around it are folded, and a restore re-reading it passes over it."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    letters = Recording("dlq")

    def payments_stage() -> WindowStage[Any, Any]:
        tables: dict[str, BatchSink] = {name: Recording(name) for name in TABLES}
        return WindowStage(
            CashlessPayments(load_city_profile(), 900),
            topic,
            StageSinks(tables, Recording("out"), letters),
            engine.store,
            aiokafka_config(KafkaSettings(kafka_bootstrap=broker)),
            max_clock_skew_s=3600,
            highwater=lambda _topic, _partition: None,
        )

    messages = [
        (orjson.dumps(tally("a", "VT-T-00001", T0)), origin_header(3, 7, T0)),
        (orjson.dumps(tally("b", "VT-T-00001", T0)), [("vtops.origin", b"not,a number")]),
        (orjson.dumps(tally("c", "VT-T-00001", T0)), []),
        (orjson.dumps(tally("d", "VT-T-00001", T0)), origin_header(3, 8, T0)),
    ]
    producer = KafkaProducer(bootstrap_servers=broker)
    for value, headers in messages:
        producer.send(topic, value=value, partition=0, headers=headers)
    producer.flush()
    producer.close()
    records = [
        ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), headers)
        for offset, (value, headers) in enumerate(messages)
    ]
    stage = payments_stage()
    asyncio.run(stage.assign(0))
    stage.fold(0, records)
    asyncio.run(Checkpointer([stage], engine.store, Commits()).run())
    assert [row["error"].split(":")[0] for row in letters.rows] == ["headers", "headers"]
    meta = asyncio.run(engine.store.load(topic, 0))[META_KEY]
    assert (meta["counters"]["accepted"], meta["counters"]["invalid"]) == (2, 2)
    assert meta["inputs"]["clocks"]["3"] == [T0, 8, False]
    # The open window spans the damaged record: its restore re-reads it.
    assert asyncio.run(payments_stage().assign(0)) == 4


def test_a_forged_time_on_a_rekey_topic_is_a_dead_letter_and_closes_nothing() -> None:
    """Issue 16: only routers write a re-key topic, and they refuse events further ahead than
    the skew; a forged watermark or forward from 2100 closed every window for good."""
    letters = Recording("dlq")
    stage = WindowStage(
        CashlessPayments(load_city_profile(), 900),
        "by-group",
        StageSinks(dict.fromkeys(TABLES, Unwritten()), Unwritten(), letters),
        NothingSaved(),
        aiokafka_config(KafkaSettings()),
        max_clock_skew_s=3600,
        highwater=lambda _topic, _partition: None,
    )
    year_2100 = 4_102_444_800_000
    messages = [
        (orjson.dumps(tally("a", "VT-T-00001", T0)), origin_header(0, 0, T0)),
        (watermark_value(1, {0: (year_2100, False)}), watermark_header()),
        (orjson.dumps(tally("b", "VT-T-00002", T0)), origin_header(0, 1, year_2100)),
        (orjson.dumps(tally("c", "VT-T-00003", year_2100 - 3_600_000)), origin_header(0, 2, T0)),
        (orjson.dumps(tally("d", "VT-T-00004", T0)), origin_header(0, 3, T0)),
    ]
    records = [
        ConsumerRecord("by-group", 0, n, 0, 0, None, value, None, 0, len(value), headers)
        for n, (value, headers) in enumerate(messages)
    ]

    async def run() -> None:
        await stage.assign(0)
        stage.fold(0, records)
        cut = Cut()
        stage.cut(cut, 0.0)
        for sink, rows in cut.ordered():
            await sink.write(rows)

    asyncio.run(run())
    assert [letter["error"].split(" further")[0] for letter in letters.rows] == [
        "payload: a watermark's stream time",
        "headers: a vtops.origin stream time",
        "period_start:",
    ]
    state = stage.partition_state(0)
    assert state.inputs is not None and state.inputs.clocks[0].stream_time_ms == T0
    assert state.windows[(("phuong-1", "grocery"), T0)].acc.reports == 2


def test_the_state_is_read_only_once_the_store_is_migrated(engine: Engine) -> None:
    """A worker migrates its store while it starts (issue 20, P7): the first assignment's load
    waits for the migrations, and one that failed stops it with the migration's own error."""
    migrating: Future[object] = Future()
    store = StateStore(engine.client, DATABASE, ThreadPoolExecutor(1), migrated=migrating)
    failed: Future[object] = Future()
    unmigrated = StateStore(engine.client, DATABASE, ThreadPoolExecutor(1), migrated=failed)

    async def assign() -> None:
        load = asyncio.ensure_future(store.preload([("camera.events", 0)]))
        await asyncio.sleep(0.05)
        assert not load.done()
        migrating.set_result([])
        await load
        failed.set_exception(SinkError("migration 3 failed"))
        with pytest.raises(SinkError, match="migration 3 failed"):
            await unmigrated.preload([("camera.events", 0)])

    asyncio.run(assign())
