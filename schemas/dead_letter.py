"""Dead letters (contract section 6): the bad message, where it came from, and why.

A dead letter keeps what it takes to send the message back where it came from: its key (so it
lands on the partition its dedup lives on), headers and Kafka timestamp. Bytes are kept as
text when they are UTF-8, else as base64, as each `*_encoding` field says; header values are
always base64, or null for a null value (Java and librdkafka producers can send one, aiokafka
hands it over as None). `original_key`, `original_headers` and `original_value` read them
back from a DLQ message or a `dlq_events` row alike, and raise ValueError for what was not
kept whole.

A dead letter must always fit in a Kafka message, whatever it carries (JSON escapes a control
byte as six): of the value it keeps 16 KiB, with the length and digest of the whole beyond
that; the key and headers are kept when together they are 16 KiB at most, else only their
length (`origin_bytes`): such a letter cannot be sent back.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

# Of the original value, what a dead letter keeps: 16 KiB, at most 96 KiB once JSON-escaped.
MAX_PAYLOAD_BYTES: Final = 16 * 1024
# The key and the headers (names and values) together, kept whole or not at all.
MAX_ORIGIN_BYTES: Final = 16 * 1024
UTF8: Final = "utf-8"
BASE64: Final = "base64"


def _as_text(raw: bytes) -> tuple[str, str]:
    """`raw` as text and its encoding: itself when it is UTF-8, else base64."""
    try:
        return raw.decode("utf-8"), UTF8
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), BASE64


def _as_bytes(text: str, encoding: str | None) -> bytes:
    if encoding == BASE64:
        return base64.b64decode(text, validate=True)
    if encoding == UTF8:
        return text.encode("utf-8")
    raise ValueError(f"unknown encoding {encoding!r}")


def dead_letter(
    source_topic: str,
    partition: int,
    offset: int,
    raw: bytes | None,
    error: str,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes | None]] = (),
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """The DLQ message; the same fields are a `dlq_events` row. `timestamp_ms` is the original
    message's Kafka timestamp (ms since the epoch), None when it had none."""
    letter: dict[str, Any] = {
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "error": error,
        "received_at": datetime.now(UTC),  # an instant; the store shows it in city time
        "payload_bytes": None,
        "payload_sha256": None,
        "key": None,
        "key_encoding": None,
        "headers": [],
        "origin_bytes": None,
        "timestamp": timestamp_ms if timestamp_ms is not None and timestamp_ms >= 0 else None,
    }
    value = raw or b""
    if len(value) > MAX_PAYLOAD_BYTES:
        letter["payload_bytes"] = len(value)
        letter["payload_sha256"] = hashlib.sha256(value).hexdigest()
    letter["payload"], letter["payload_encoding"] = _as_text(value[:MAX_PAYLOAD_BYTES])
    origin_bytes = len(key or b"") + sum(len(name.encode()) + len(v or b"") for name, v in headers)
    if origin_bytes > MAX_ORIGIN_BYTES:
        letter["origin_bytes"] = origin_bytes
        return letter
    if key is not None:
        letter["key"], letter["key_encoding"] = _as_text(key)
    letter["headers"] = [
        (name, None if v is None else base64.b64encode(v).decode("ascii")) for name, v in headers
    ]
    return letter


def _origin_kept(letter: Mapping[str, Any]) -> None:
    if letter.get("origin_bytes") is not None:
        raise ValueError(
            f"key, headers: {letter['origin_bytes']} bytes together, over the "
            f"{MAX_ORIGIN_BYTES} a dead letter keeps"
        )


def original_key(letter: Mapping[str, Any]) -> bytes | None:
    """The key of the dead-lettered message, None when it had none."""
    _origin_kept(letter)
    key = letter.get("key")
    return None if key is None else _as_bytes(key, letter.get("key_encoding"))


def original_headers(letter: Mapping[str, Any]) -> list[tuple[str, bytes | None]]:
    _origin_kept(letter)
    return [
        (name, None if value is None else base64.b64decode(value))
        for name, value in letter.get("headers") or ()
    ]


def original_value(letter: Mapping[str, Any]) -> bytes:
    """The dead-lettered value; a ValueError when the letter kept only its start."""
    if letter.get("payload_bytes") is not None:
        raise ValueError(
            f"payload: only the first {MAX_PAYLOAD_BYTES} of {letter['payload_bytes']} bytes kept"
        )
    # Section 6 names the encoding only when it is base64; `dlq_events` rows written before
    # schema version 2 have none and cannot tell.
    return _as_bytes(letter["payload"], letter.get("payload_encoding") or UTF8)
