"""Kafka record batches read as bytes, for the records aiokafka cannot hand over.

Kafka says a header name is UTF-8 text, but brokers do not check it, and librdkafka and Java
producers send whatever bytes they are given. aiokafka decodes every header name strictly
while it iterates a batch (`default_records.pyx`, `_read_msg`), so one such record raises
`UnicodeDecodeError` out of `getmany` and stops the batch there: neither it nor the records
after it in its batch can ever be read through aiokafka, and seeking past it does not help
(the broker returns whole batches, and aiokafka parses a batch from its first record).

`records_in` reads the batches of a fetch response itself (format v2, the only one a broker
writes since Kafka 3.0; compressed ones too) and gives each record as aiokafka would, except
that a record with a header name that is not UTF-8 becomes an `UnreadableRecord`: its value,
key and headers kept (that name written with backslash escapes), and a reason for its dead
letter that names the header and quotes none of it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.codec import gzip_decode, lz4_decode, snappy_decode, zstd_decode
from aiokafka.record.util import decode_varint

from schemas.exceptions import InvalidEvent
from streams.engine.exceptions import UnreadableBatch

# baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta,
# baseTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence, recordCount
_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
# What batchLength counts from: the bytes after baseOffset and batchLength.
_LENGTH_FROM = 12
_DECOMPRESS = {1: gzip_decode, 2: snappy_decode, 3: lz4_decode, 4: zstd_decode}
_CONTROL = 0x20
_LOG_APPEND_TIME = 0x08


@dataclass
class UnreadableRecord(ConsumerRecord[bytes, bytes]):  # type: ignore[misc]
    """A record the stages make a dead letter of, with `reason`, whatever else it holds."""

    reason: str = ""


def refuse_unreadable(record: ConsumerRecord) -> None:
    """Every stage's first look at a record: one `records_in` could not read is invalid."""
    if type(record) is UnreadableRecord:
        raise InvalidEvent(record.reason)


@dataclass(frozen=True)
class Batches:
    """The records of one partition's fetch, from a start offset, and where to read on."""

    records: list[ConsumerRecord]
    next_offset: int


def records_in(tp: TopicPartition, raw: bytes, start: int) -> Batches:
    """`tp`'s records at `start` or later in the complete batches of `raw` (a fetch response's
    record set; a batch cut off at its end is read by the next fetch)."""
    records: list[ConsumerRecord] = []
    pos, next_offset = 0, start
    view = memoryview(raw)
    while pos + _BATCH_HEADER.size <= len(raw):
        header = _BATCH_HEADER.unpack_from(view, pos)
        base_offset, length, _, magic, _, attributes, last_delta = header[:7]
        end = pos + _LENGTH_FROM + length
        if end > len(raw):
            break
        if magic != 2:
            raise UnreadableBatch(
                f"{tp.topic} partition {tp.partition}: offset {base_offset} is in a message "
                f"set of format v{magic}, which this worker does not read byte by byte"
            )
        if not attributes & _CONTROL:
            body = view[pos + _BATCH_HEADER.size : end]
            codec = attributes & 0x07
            if codec:
                body = memoryview(_DECOMPRESS[codec](body))
            records.extend(r for r in _records(tp, header, body) if r.offset >= start)
        next_offset = max(next_offset, base_offset + last_delta + 1)
        pos = end
    return Batches(records, next_offset)


def _records(tp: TopicPartition, header: tuple[Any, ...], body: memoryview) -> list[ConsumerRecord]:
    base_offset, attributes = header[0], header[5]
    base_ts, max_ts, count = header[7], header[8], header[12]
    log_append = bool(attributes & _LOG_APPEND_TIME)
    found: list[ConsumerRecord] = []
    pos = 0
    for _ in range(count):
        _, pos = decode_varint(body, pos)  # the record's length
        pos += 1  # its attributes, unused
        ts_delta, pos = decode_varint(body, pos)
        offset_delta, pos = decode_varint(body, pos)
        key, pos = _bytes(body, pos)
        value, pos = _bytes(body, pos)
        header_count, pos = decode_varint(body, pos)
        headers: list[tuple[str, bytes | None]] = []
        unreadable: list[int] = []
        for n in range(header_count):
            name, pos = _bytes(body, pos)
            header_value, pos = _bytes(body, pos)
            try:
                text = bytes(name or b"").decode("utf-8")
            except UnicodeDecodeError:
                text = bytes(name or b"").decode("utf-8", "backslashreplace")
                unreadable.append(n + 1)
            headers.append((text, header_value))
        fields = (
            tp.topic,
            tp.partition,
            base_offset + offset_delta,
            max_ts if log_append else base_ts + ts_delta,
            1 if log_append else 0,
            key,
            value,
            None,
            -1 if key is None else len(key),
            -1 if value is None else len(value),
            tuple(headers),
        )
        if unreadable:
            numbers = ", ".join(str(n) for n in unreadable)
            reason = f"headers: the name of header {numbers} is not UTF-8"
            found.append(UnreadableRecord(*fields, reason=reason))
        else:
            found.append(ConsumerRecord(*fields))
    return found


def _bytes(body: memoryview, pos: int) -> tuple[bytes | None, int]:
    """A length-prefixed field; a negative length is null."""
    length, pos = decode_varint(body, pos)
    if length < 0:
        return None, pos
    return bytes(body[pos : pos + length]), pos + length
