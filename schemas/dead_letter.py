"""Dead letters (contract section 6): the bad message, where it came from, and why."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from city.clock import CITY_TZ


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
    try:
        letter["payload"] = (raw or b"").decode("utf-8")
    except UnicodeDecodeError:
        letter["payload"] = base64.b64encode(raw or b"").decode("ascii")
        letter["payload_encoding"] = "base64"
    return letter
