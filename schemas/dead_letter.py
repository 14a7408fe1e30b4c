"""Dead letters (contract section 6): the bad message, where it came from, and why."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from city.clock import CITY_TZ

# Of the original value, what a dead letter keeps: 16 KiB, at most 96 KiB once JSON-escaped.
MAX_PAYLOAD_BYTES = 16 * 1024


def dead_letter(
    source_topic: str, partition: int, offset: int, raw: bytes | None, error: str
) -> dict[str, Any]:
    """The DLQ message; the same fields become a `dlq_events` row."""
    letter: dict[str, Any] = {
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "error": error,
        "received_at": datetime.now(CITY_TZ),
    }
    value = raw or b""
    kept = value[:MAX_PAYLOAD_BYTES]
    if len(value) > MAX_PAYLOAD_BYTES:
        # A dead letter must always fit in a Kafka message, whatever it carries (JSON escapes
        # a control byte as six): keep the start, the length and a digest of the whole.
        letter["payload_bytes"] = len(value)
        letter["payload_sha256"] = hashlib.sha256(value).hexdigest()
    try:
        letter["payload"] = kept.decode("utf-8")
    except UnicodeDecodeError:
        letter["payload"] = base64.b64encode(kept).decode("ascii")
        letter["payload_encoding"] = "base64"
    return letter
