"""The engine's own reader of record batches, on batches kafka-python's producer builds."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from kafka.record.default_records import DefaultRecordBatchBuilder

from schemas.exceptions import InvalidEvent
from streams.engine.exceptions import UnreadableBatch
from streams.engine.record_batches import UnreadableRecord, records_in, refuse_unreadable
from tests.raw_headers import RawName

TP = TopicPartition("camera.events", 2)
T = 1_726_297_200_000


def batch(
    base_offset: int, codec: int, headers_of: dict[int, list[tuple[str, bytes | None]]]
) -> bytes:
    builder = DefaultRecordBatchBuilder(2, codec, False, -1, -1, -1, 1 << 20)
    for n in range(4):
        key = None if n == 3 else b"VT-CAM-%03d" % n
        builder.append(n, T + n, key, b"v%d" % n, headers_of.get(n, []))
    raw = builder.build()
    raw[0:8] = base_offset.to_bytes(8, "big")  # the broker sets the base offset
    return bytes(raw)


@pytest.mark.parametrize("codec", [0, 1, 3], ids=["none", "gzip", "lz4"])
def test_a_bad_header_name_is_one_unreadable_record_among_the_others(codec: int) -> None:
    headers: dict[int, list[tuple[str, bytes | None]]] = {
        1: [("traceparent", b"00"), (RawName(b"\xff\xfe"), None)],
        2: [("x", b"")],
    }
    raw = batch(10, codec, headers) + batch(14, codec, {})
    found = records_in(TP, raw, start=11)
    assert [r.offset for r in found.records] == list(range(11, 18))
    assert found.next_offset == 18
    unreadable = found.records[0]
    assert type(unreadable) is UnreadableRecord
    assert unreadable.reason == "headers: the name of header 2 is not UTF-8"
    assert unreadable.headers == (("traceparent", b"00"), ("\\xff\\xfe", None))
    assert (unreadable.key, unreadable.value, unreadable.timestamp) == (b"VT-CAM-001", b"v1", T + 1)
    with pytest.raises(InvalidEvent, match=r"^headers: the name of header 2 is not UTF-8$"):
        refuse_unreadable(unreadable)
    assert all(type(r) is ConsumerRecord for r in found.records[1:])
    assert found.records[1].headers == (("x", b""),)
    assert found.records[2].key is None
    refuse_unreadable(found.records[1])  # a readable record passes


def test_a_batch_cut_off_by_the_fetch_size_is_left_for_the_next_fetch() -> None:
    raw = batch(0, 0, {}) + batch(4, 0, {})
    found = records_in(TP, raw[:-5], start=0)
    assert ([r.offset for r in found.records], found.next_offset) == ([0, 1, 2, 3], 4)


def test_a_message_set_of_an_old_format_is_refused_naming_where() -> None:
    raw = bytearray(batch(7, 0, {}))
    raw[16] = 1  # magic
    with pytest.raises(UnreadableBatch, match=r"partition 2: offset 7 .* format v1"):
        records_in(TP, bytes(raw), start=0)
