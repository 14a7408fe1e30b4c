"""What travels on a re-key topic: the original values, where each came from, and marks.

A record of forwards (header `vtops.forwards`, its value the input partition) holds, in input
order, forwards of one input partition to one re-key partition, each as [input offset, that
partition's stream time after the event, the original value], MessagePack-encoded. A router
sends one such record per input partition and re-key partition at each checkpoint (more when
their values pass `FORWARDS_MAX_BYTES`): Kafka's cost per record, ~2 µs to produce and ~2 to
consume, was a third of a re-keyed message's CPU when each forward was a record (issue 20).

The format before it, still read from retained topics: a record per forward, its original value
with one header, `vtops.origin`, holding the input partition, offset and stream time.

A watermark record (header `vtops.watermark`) says, for the input partitions one router owns,
their stream time and whether they are idle; every partition of the re-key topic gets it, so
windows fed by several input partitions can close when all of them have passed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter
from typing import Annotated, Any

import msgspec
import orjson

from schemas.exceptions import InvalidEvent

FORWARDS = "vtops.forwards"
ORIGIN = "vtops.origin"
WATERMARK = "vtops.watermark"

# Original values a record of forwards holds at most: far below Kafka's 1 MB for a message
# (the broker's and the producer's default), whatever a checkpoint's backlog, and half the
# producer's batch (streams/app.py), so a batch holds at least two.
FORWARDS_MAX_BYTES = 256 * 1024

# Header values may be null: Java and librdkafka producers can send one.
Headers = Sequence[tuple[str, bytes | None]]


# A record of the older format's `vtops.origin`. Not frozen: one is made per such record read
# (a retained topic holds millions), and a frozen dataclass's `__init__` (object.__setattr__
# per field) costs about three times a plain one's (issue 20).
@dataclass(slots=True)
class Origin:
    partition: int
    offset: int
    stream_time_ms: int


def origin_header(partition: int, offset: int, stream_time_ms: int) -> list[tuple[str, bytes]]:
    return [(ORIGIN, f"{partition},{offset},{stream_time_ms}".encode())]


# What Kafka can number: partitions are int32, offsets int64. A forged header past them would
# sit in an input clock that no saved state can hold (orjson refuses ints past 64 bits, and
# every checkpoint after it would fail) or that no real offset ever passes again.
_PARTITIONS, _OFFSETS = 2**31, 2**63


def _number(text: bytes, below: int) -> int:
    """A non-negative decimal below `below`; ValueError otherwise (no sign, no spaces, no
    `_`, which int() would read)."""
    if not text.isdigit() or len(text) > 19 or int(text) >= below:
        raise ValueError(text)
    return int(text)


def origin_of(headers: Headers) -> Origin | None:
    """The origin of a forwarded record; None for any other record."""
    for name, value in headers:
        if name == ORIGIN:
            try:
                partition, offset, stream_time = (value or b"").split(b",")
                negative = stream_time.startswith(b"-")
                time = _number(stream_time[negative:], _OFFSETS)
                return Origin(
                    _number(partition, _PARTITIONS),
                    _number(offset, _OFFSETS),
                    -time if negative else time,
                )
            except ValueError:
                raise InvalidEvent(f"headers: malformed {ORIGIN} header") from None
    return None


def is_watermark(headers: Headers) -> bool:
    return any(name == WATERMARK for name, _ in headers)


def watermark_header() -> list[tuple[str, bytes]]:
    return [(WATERMARK, b"")]


def watermark_value(partitions: int, clocks: dict[int, tuple[int | None, bool]]) -> bytes:
    return orjson.dumps(
        {"partitions": partitions, "clocks": {str(p): list(c) for p, c in clocks.items()}}
    )


def read_watermark(value: bytes | None) -> tuple[int, dict[int, tuple[int | None, bool]]]:
    try:
        decoded: dict[str, Any] = orjson.loads(value or b"{}")
        clocks = {int(p): (t, bool(idle)) for p, (t, idle) in decoded["clocks"].items()}
        return int(decoded["partitions"]), clocks
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidEvent("payload: malformed watermark") from None


# (input offset, the input partition's stream time after the event, original value)
Forward = tuple[int, int, bytes]
_FORWARD_FIELDS = ("input offset", "stream time", "value")
encode_forwards = msgspec.msgpack.Encoder().encode
_Offset = Annotated[int, msgspec.Meta(ge=0, le=_OFFSETS - 1)]
_Time = Annotated[int, msgspec.Meta(ge=-_OFFSETS, le=_OFFSETS - 1)]
_decode_forwards = msgspec.msgpack.Decoder(list[tuple[_Offset, _Time, bytes]]).decode
_AT = re.compile(r"(.*) - at `\$\[(\d+)\]\[(\d)\]`$")


def forward_records(forwards: Sequence[Forward]) -> Iterator[bytes]:
    """The values of the records that carry `forwards`, in order: as many forwards a record
    as fit in FORWARDS_MAX_BYTES of values, at least one."""
    ends = list(accumulate(map(len, map(itemgetter(2), forwards))))  # of the values, in bytes
    start, before = 0, 0
    while start < len(forwards):
        stop = max(start + 1, bisect_right(ends, before + FORWARDS_MAX_BYTES, start))
        yield encode_forwards(forwards[start:stop])
        start, before = stop, ends[stop - 1]


def forwards_header(partition: int) -> list[tuple[str, bytes]]:
    return [(FORWARDS, str(partition).encode())]


def forwards_of(headers: Headers, value: bytes | None) -> tuple[int, list[Forward]] | None:
    """(input partition, forwards) of a record of forwards; None for any other record.
    InvalidEvent naming the field for a malformed one: it is dead-lettered whole."""
    found = [header for name, header in headers if name == FORWARDS]
    if not found:
        return None
    try:
        partition = _number(found[0] or b"", _PARTITIONS)
    except ValueError:
        raise InvalidEvent(f"headers: {FORWARDS} must be an input partition") from None
    try:
        return partition, _decode_forwards(value or b"")
    except msgspec.ValidationError as error:
        at = _AT.match(str(error))
        if at is None:
            raise InvalidEvent(f"payload: forwards must be a list of forwards ({error})") from None
        fault, index, field = at.groups()
        raise InvalidEvent(
            f"payload: forward {index}: {_FORWARD_FIELDS[int(field)]}: {fault}"
        ) from None
    except msgspec.DecodeError:
        raise InvalidEvent("payload: forwards are not MessagePack") from None
