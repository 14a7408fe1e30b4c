"""Hostile records on a re-key topic (issue 20 review): whatever a record of forwards or an
older one-per-forward record holds, the decoders give sound numbers or refuse it naming its
field, and a window stage folds every good record around it and can still save its state.
Only routers write there (broker ACLs), so this is about a forger or a corrupted log, not a
router's mistake. In process: no broker."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.exceptions import InvalidEvent
from streams.engine.offline import _Forward
from streams.engine.records import (
    FORWARDS,
    ORIGIN,
    encode_forwards,
    forwards_header,
    forwards_of,
    origin_header,
    origin_of,
)
from tests.factories import T0
from tests.factories_payments import tally
from tests.streams.test_rekey_records import batch, fold_and_cut, record, window_stage

KAFKA_PARTITIONS = 2**31  # a partition is an int32
KAFKA_OFFSETS = 2**63  # an offset is an int64
HUGE = 10**30  # past every 64-bit integer: no saved state could hold it as a number

header_values = st.one_of(
    st.none(),
    st.binary(max_size=24),
    st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
    st.tuples(*[st.integers(-(2**70), 2**70)] * 3).map(lambda t: ",".join(map(str, t)).encode()),
)
# What MessagePack can hold, the edges of int32 and int64 often.
numbers = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([-(2**63), -1, 0, 2**31, 2**63 - 1, 2**63, 2**64 - 1]),
)
forward_values = st.one_of(
    st.binary(max_size=64),
    st.lists(
        st.tuples(numbers, numbers, st.one_of(st.binary(max_size=8), st.text(max_size=4))),
        max_size=4,
    ).map(msgspec.msgpack.encode),
    st.lists(st.tuples(numbers, numbers, st.binary(max_size=8)), max_size=4).map(
        msgspec.msgpack.encode
    ),
)


def sound(partition: int, offset: int, stream_time_ms: int) -> bool:
    return (
        0 <= partition < KAFKA_PARTITIONS
        and 0 <= offset < KAFKA_OFFSETS
        and -KAFKA_OFFSETS <= stream_time_ms < KAFKA_OFFSETS
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([FORWARDS, ORIGIN, "other"]), header_values, forward_values)
def test_a_re_key_record_decodes_to_sound_numbers_or_is_refused_naming_its_field(
    name: str, header: bytes | None, value: bytes
) -> None:
    headers = [(name, header)]
    try:
        found = forwards_of(headers, value)
        origin = origin_of(headers)
    except InvalidEvent as refused:
        assert refused.reason.startswith(("headers: ", "payload: "))
        return
    if found is not None:
        partition, forwards = found
        assert all(sound(partition, o, t) and type(v) is bytes for o, t, v in forwards)
    if origin is not None:
        assert sound(origin.partition, origin.offset, origin.stream_time_ms)


GOOD = [orjson.dumps(tally(f"e{n}", f"VT-T-{n:05d}", T0)) for n in range(4)]

SOUND = encode_forwards([(1, T0, GOOD[1])])
# (what it is, its headers, its value, the start of its dead letter's reason)
HOSTILE: list[tuple[str, Any, bytes | None, str]] = [
    ("an input offset past 64 bits", [(ORIGIN, f"0,{HUGE},{T0}".encode())], GOOD[1], "headers: "),
    ("a partition past 64 bits", [(ORIGIN, f"{HUGE},9,{T0}".encode())], GOOD[1], "headers: "),
    ("a stream time below 64 bits", [(ORIGIN, f"0,9,-{HUGE}".encode())], GOOD[1], "headers: "),
    ("a negative input partition", [(ORIGIN, f"-1,9,{T0}".encode())], GOOD[1], "headers: "),
    ("a null origin", [(ORIGIN, None)], GOOD[1], "headers: "),
    ("a forwards partition past int32", forwards_header(KAFKA_PARTITIONS), SOUND, "headers: "),
    ("a forwards partition with a sign", [(FORWARDS, b"+0")], SOUND, "headers: "),
    ("a forwards partition with spaces", [(FORWARDS, b" 0 ")], SOUND, "headers: "),
    ("a null forwards partition", [(FORWARDS, None)], SOUND, "headers: "),
    ("truncated forwards", forwards_header(0), SOUND[:-3], "payload: forwards are not"),
    ("forwards and a byte more", forwards_header(0), SOUND + b"\x00", "payload: forwards are not"),
    ("an array said to hold 2^32 - 1", forwards_header(0), b"\xdd\xff\xff\xff\xff", "payload: "),
    ("a forward of two fields", forwards_header(0), msgspec.msgpack.encode([[1, T0]]), "payload: "),
    (
        "a forward's value as text",
        forwards_header(0),
        msgspec.msgpack.encode([[1, T0, GOOD[1].decode()]]),
        "payload: forward 0: value: ",
    ),
    ("a null value", forwards_header(0), None, "payload: forwards are not"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "value", "names"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_a_hostile_record_between_good_ones_is_one_letter_and_the_state_still_saves(
    headers: Any, value: bytes | None, names: str
) -> None:
    stage, letters = window_stage()
    records = [
        batch(0, 0, [(0, T0, GOOD[0])]),
        ConsumerRecord("by-group", 0, 1, 0, 0, None, value, None, -1, -1, headers),
        record(2, GOOD[2], origin_header(0, 2, T0)),
        batch(3, 0, [(3, T0, GOOD[3])]),
    ]
    fold_and_cut(stage, {0: records})  # the cut encodes the state: it must not raise
    assert [(letter["offset"], letter["error"][: len(names)]) for letter in letters.rows] == [
        (1, names)
    ]
    state = stage.partition_state(0)
    assert state.inputs is not None
    assert (state.counters.accepted, state.inputs.clocks[0].offset) == (3, 3)
    assert list(state.inputs.clocks) == [0]


def test_an_input_offset_past_int64_in_a_record_of_forwards_is_refused_naming_it() -> None:
    with pytest.raises(InvalidEvent) as refused:
        forwards_of(forwards_header(0), encode_forwards([(0, T0, GOOD[0]), (2**63, T0, b"")]))
    assert refused.value.reason.startswith("payload: forward 1: input offset: ")


def test_an_invalid_event_routed_in_memory_is_a_letter_of_its_own() -> None:
    """`vtops reprocess` hands the window stage a router's rows in memory, not Kafka's records
    (streams/engine/offline.py): an invalid event among them is its own letter there too, and
    the forwards after it in its record fold."""
    unknown_ward = orjson.dumps(tally("bad", "VT-T-09999", T0, ward="atlantis"))
    forwards = [(0, T0, GOOD[0]), (1, T0, unknown_ward), (2, T0, GOOD[2])]
    stage, letters = window_stage()
    routed = _Forward(0, None, encode_forwards(forwards), forwards_header(0))
    fold_and_cut(stage, {0: [routed]})
    assert [letter["error"][:5] for letter in letters.rows] == ["ward:"]
    assert stage.partition_state(0).counters.accepted == 2
