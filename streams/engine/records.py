"""What travels on a re-key topic besides the original values: where each came from, and marks.

A forwarded record keeps the original value and gets one header, `vtops.origin`, with the
input partition, offset and that partition's stream time after the event. A watermark record
(header `vtops.watermark`) says, for the input partitions one router owns, their stream time
and whether they are idle; every partition of the re-key topic gets it, so windows fed by
several input partitions can close when all of them have passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.exceptions import InvalidEvent

ORIGIN = "vtops.origin"
WATERMARK = "vtops.watermark"

# Header values may be null: Java and librdkafka producers can send one.
Headers = Sequence[tuple[str, bytes | None]]


# Not frozen: one is made per routed message, and a frozen dataclass's `__init__`
# (object.__setattr__ per field) costs about three times a plain one's (issue 20).
@dataclass(slots=True)
class Origin:
    partition: int
    offset: int
    stream_time_ms: int


def origin_header(partition: int, offset: int, stream_time_ms: int) -> list[tuple[str, bytes]]:
    return [(ORIGIN, f"{partition},{offset},{stream_time_ms}".encode())]


def origin_of(headers: Headers) -> Origin | None:
    """The origin of a forwarded record; None for any other record."""
    for name, value in headers:
        if name == ORIGIN:
            try:
                partition, offset, stream_time = (value or b"").split(b",")
                return Origin(int(partition), int(offset), int(stream_time))
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
