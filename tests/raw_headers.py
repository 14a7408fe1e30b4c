"""Header names of any bytes, as librdkafka and Java producers can send them."""

from __future__ import annotations

from collections.abc import Sequence


class RawName(str):
    """A header name that kafka-python writes as the given bytes: its producer and record
    builder encode each name by calling its `encode` (aiokafka's refuse anything but str)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawName:
        name = super().__new__(cls, raw.decode("latin-1"))
        name.raw = raw
        return name

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


def header_name(raw: bytes) -> str:
    """The name a producer sends as `raw`: plain text when it is UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return RawName(raw)


def kept_name(name: str) -> str:
    """The name as a dead letter keeps it: one that is not UTF-8 with backslash escapes."""
    return name.raw.decode("utf-8", "backslashreplace") if isinstance(name, RawName) else name


def kept_headers(headers: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    return [(kept_name(name), value) for name, value in headers]


def has_raw_name(headers: Sequence[tuple[str, bytes | None]]) -> bool:
    return any(isinstance(name, RawName) for name, _ in headers)
