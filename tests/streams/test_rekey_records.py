"""The re-key topic's records of forwards (streams/engine/records.py): where a router sends
them, that a window stage folds them as it folded one record per forward (and still reads
those), and that a bad one is a dead letter of its own that names its fault. In process:
no broker, nothing saved."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
from aiokafka import ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner

from city.profile import load_city_profile
from sinks.base import BatchSink, Row
from sinks.clickhouse.migrations import TABLES
from streams.engine.checkpoint import Cut, StageSinks, Step
from streams.engine.offline import NothingSaved, Unwritten
from streams.engine.records import (
    FORWARDS_MAX_BYTES,
    Forward,
    encode_forwards,
    forward_records,
    forwards_header,
    forwards_of,
    is_watermark,
    origin_header,
)
from streams.engine.route_stage import RouteStage
from streams.engine.window_stage import WindowStage
from streams.payments import CashlessPayments
from tests.factories import MINUTE_MS, T0
from tests.factories_payments import tally
from tests.streams.test_engine import Recording

YEAR_2100 = 4_102_444_800_000
WARDS = ["phuong-1", "thang-tam", "rach-dua"]
CATEGORIES = ["grocery", "market"]
WINDOWS = "payments_cashless_1h"


def payments() -> CashlessPayments:
    return CashlessPayments(load_city_profile(), 900)


def router(partitions: int | None) -> tuple[RouteStage, Recording]:
    """A router of two input partitions; `partitions` of its re-key topic (None: unknown)."""
    forwards = Recording("by-group")
    stage = RouteStage(
        payments(), "input", "by-group", StageSinks(dict.fromkeys(TABLES, Unwritten()), forwards,
        Unwritten()), NothingSaved(), max_clock_skew_s=3600, idle_partition_s=3600,
        highwater=lambda _t, _p: None,
        partitions_of=lambda topic: partitions if topic == "by-group" else 2,
    )  # fmt: skip
    for partition in (0, 1):
        asyncio.run(stage.assign(partition))
    return stage, forwards


def window_stage(partitions: int = 1) -> tuple[WindowStage[Any, Any], Recording]:
    letters = Recording("dlq")
    tables: dict[str, BatchSink] = {
        **dict.fromkeys(TABLES, Unwritten()),
        WINDOWS: Recording(WINDOWS),
    }
    stage: WindowStage[Any, Any] = WindowStage(
        payments(), "by-group", StageSinks(tables, Unwritten(), letters), NothingSaved(), {},
        max_clock_skew_s=3600, highwater=lambda _t, _p: None, input_topic="input",
    )  # fmt: skip
    for partition in range(partitions):
        asyncio.run(stage.assign(partition))
    return stage, letters


def record(
    offset: int, value: bytes, headers: Sequence[tuple[str, bytes]], partition: int = 0
) -> ConsumerRecord:
    return ConsumerRecord(
        "by-group", partition, offset, 0, 0, None, value, None, -1, len(value), list(headers)
    )


def batch(offset: int, input_partition: int, forwards: list[Forward]) -> ConsumerRecord:
    return record(offset, encode_forwards(forwards), forwards_header(input_partition))


def fold_and_cut(stage: WindowStage[Any, Any], records: dict[int, list[ConsumerRecord]]) -> Cut:
    for partition, held in records.items():
        stage.fold(partition, held)
    cut = Cut()
    stage.cut(cut, 0.0)
    for sink, rows in cut.ordered():
        asyncio.run(sink.write(rows))
    return cut


def window_rows(cut: Cut) -> list[Row]:
    """The cut's window rows without their versions (offsets of the re-key topic)."""
    rows = [
        {k: v for k, v in row.items() if k != "version"}
        for (step, sink), written in cut.writes.items()
        if step is Step.WINDOWS and sink.name == WINDOWS
        for row in written
    ]
    return sorted(rows, key=lambda row: (row["ward"], row["category"], row["window_start"]))


def routed(partitions: int | None) -> tuple[list[Row], list[bytes]]:
    """What a router sends for 24 tallies over two input partitions: rows, and the values."""
    stage, forwards = router(partitions)
    values = [
        orjson.dumps(
            tally(
                f"e{n}",
                f"VT-T-{n:05d}",
                T0 + (n % 4) * 10 * MINUTE_MS,
                ward=WARDS[n % 3],
                category=CATEGORIES[n % 2],
            )
        )
        for n in range(24)
    ]
    for n, value in enumerate(values):
        stage.fold(
            n % 2, [ConsumerRecord("input", n % 2, n // 2, 0, 0, None, value, None, -1, 0, ())]
        )
    cut = Cut()
    stage.cut(cut, 0.0)
    for sink, rows in cut.ordered():
        asyncio.run(sink.write(rows))
    return [row for row in forwards.rows if not is_watermark(row["headers"])], values


def test_a_checkpoint_sends_a_record_per_input_and_rekey_partition_where_the_producer_would() -> (
    None
):
    rows, values = routed(3)
    assert len({(row["partition"], row["headers"][0]) for row in rows}) == len(rows) <= 2 * 3
    partition_of = DefaultPartitioner()
    sent: dict[tuple[int, int], bytes] = {}
    for row in rows:
        found = forwards_of(row["headers"], row["value"])
        assert found is not None
        input_partition, forwards = found
        for offset, _, value in forwards:
            event = orjson.loads(value)
            key = f"{event['ward']}|{event['category']}".encode()
            # Where `send` put the one-per-forward records of this window group.
            assert row["partition"] == partition_of(key, [0, 1, 2], [0, 1, 2])
            sent[(input_partition, offset)] = value
    assert sent == {(n % 2, n // 2): value for n, value in enumerate(values)}


def test_records_of_forwards_fold_into_the_rows_one_record_per_forward_gave() -> None:
    """Both formats on one window stage partition, as `vtops reprocess` routes in memory."""
    batched, _ = routed(1)
    one_each, _ = routed(None)
    assert all(row.get("partition") is None for row in one_each)
    rows, states = [], []
    for sent in (batched, one_each):
        stage, letters = window_stage()
        records = [record(n, row["value"], row["headers"]) for n, row in enumerate(sent)]
        rows.append(window_rows(fold_and_cut(stage, {0: records})))
        state = stage.partition_state(0)
        assert state.inputs is not None and letters.rows == []
        states.append((state.counters.as_dict(), state.inputs.to_state()))
    assert rows[0] == rows[1] and len(rows[0]) == 3 * 2 * 1
    assert states[0] == states[1] and states[0][0]["accepted"] == 24


def test_old_records_and_records_of_forwards_on_one_partition_count_each_event_once() -> None:
    """A re-key topic retained across the upgrade: forwards of input offsets 0 and 1 as
    records of their own, then a record of forwards of offsets 1-3 (the router, restarted
    after the upgrade, sends offset 1 again)."""
    events = [orjson.dumps(tally(f"e{n}", f"VT-T-{n:05d}", T0)) for n in range(4)]
    stage, letters = window_stage()
    fold_and_cut(
        stage,
        {
            0: [
                record(0, events[0], origin_header(0, 0, T0)),
                record(1, events[1], origin_header(0, 1, T0)),
                batch(2, 0, [(n, T0, events[n]) for n in (1, 2, 3)]),
            ]
        },
    )
    state = stage.partition_state(0)
    assert (state.counters.accepted, state.counters.duplicates, letters.rows) == (4, 0, [])
    assert state.windows[(("phuong-1", "grocery"), T0)].acc.reports == 4


def test_a_bad_record_of_forwards_is_one_dead_letter_naming_its_fault() -> None:
    """Each bad record is refused whole, before any of its forwards is folded, and the
    records around it are folded; an invalid event in a sound record is a letter of its own."""
    good = [orjson.dumps(tally(f"e{n}", f"VT-T-{n:05d}", T0)) for n in range(6)]
    unknown_ward = orjson.dumps(tally("bad", "VT-T-09999", T0, ward="atlantis"))
    stage, letters = window_stage()
    records = [
        batch(0, 0, [(0, T0, good[0])]),
        batch(1, 0, [(1, T0, good[1]), (2, YEAR_2100, good[2])]),  # a forged stream time
        record(2, encode_forwards([(1, T0, good[1])]), [("vtops.forwards", b"zero")]),
        record(3, b"\xc1 not msgpack", forwards_header(0)),
        record(4, msgspec.msgpack.encode([[1, "soon", good[1]]]), forwards_header(0)),
        record(5, msgspec.msgpack.encode({"forwards": []}), forwards_header(0)),
        batch(6, 0, [(3, T0, unknown_ward), (4, T0, good[4])]),
    ]
    fold_and_cut(stage, {0: records})
    assert [(letter["offset"], letter["error"]) for letter in letters.rows] == [
        (1, "payload: a forward's stream time further ahead of the wall clock than twice "
         "VTOPS_MAX_CLOCK_SKEW_S"),
        (2, "headers: vtops.forwards must be an input partition"),
        (3, "payload: forwards are not MessagePack"),
        (4, "payload: forward 0: stream time: Expected `int`, got `str`"),
        (5, "payload: forwards must be a list of forwards (Expected `array`, got `object`)"),
        (3, letters.rows[5]["error"]),
    ]  # fmt: skip
    # A bad record's letters name it; the invalid event's names its input message, whose
    # value it keeps (a forward has no key or headers to keep).
    assert {letter["source_topic"] for letter in letters.rows[:5]} == {"by-group"}
    invalid = letters.rows[5]
    assert (invalid["source_topic"], invalid["partition"]) == ("input", 0)
    assert invalid["error"].startswith("ward:")
    assert orjson.loads(invalid["payload"]) == orjson.loads(unknown_ward)
    assert (invalid["key"], invalid["headers"], invalid["timestamp"]) == (None, [], None)
    state = stage.partition_state(0)
    assert state.inputs is not None
    assert (state.counters.accepted, state.counters.invalid) == (2, 6)
    assert state.inputs.clocks[0].offset == 4 and state.inputs.clocks[0].stream_time_ms == T0


def test_invalid_events_of_one_record_are_letters_naming_their_input_messages() -> None:
    """`dlq_events` keeps one row per (source_topic, partition, offset): two invalid events of
    one record of forwards are two letters, each naming its input message (not the record),
    so a letter depends on the message alone: the record a router re-sends after a crash,
    at another offset, gives the same letters. A record of the older format names its input
    message the same way."""
    bad = [orjson.dumps(tally(f"bad{n}", f"VT-T-0999{n}", T0, ward="atlantis")) for n in range(3)]
    good = orjson.dumps(tally("e0", "VT-T-00000", T0))
    stage, letters = window_stage()
    records = [
        batch(0, 1, [(7, T0, bad[0]), (8, T0, good), (9, T0, bad[1])]),
        record(1, bad[2], origin_header(1, 10, T0)),
    ]
    fold_and_cut(stage, {0: records})
    named = [(row["source_topic"], row["partition"], row["offset"]) for row in letters.rows]
    assert named == [("input", 1, 7), ("input", 1, 9), ("input", 1, 10)]
    assert [orjson.loads(row["payload"]) for row in letters.rows] == [orjson.loads(b) for b in bad]
    resent, resent_letters = window_stage()
    fold_and_cut(resent, {0: [batch(5, 1, [(7, T0, bad[0]), (8, T0, good), (9, T0, bad[1])])]})
    assert [(r["source_topic"], r["partition"], r["offset"]) for r in resent_letters.rows] == [
        named[0],
        named[1],
    ]


def test_a_checkpoints_forwards_are_split_below_kafkas_message_size() -> None:
    value = b"x" * (FORWARDS_MAX_BYTES // 3 + 1)
    forwards = [(n, T0, value) for n in range(7)]
    records = list(forward_records(forwards))
    assert len(records) == 4 and all(len(r) < FORWARDS_MAX_BYTES + 100 for r in records)
    decoded = [forwards_of(forwards_header(0), r) for r in records]
    assert [f for found in decoded if found is not None for f in found[1]] == forwards
