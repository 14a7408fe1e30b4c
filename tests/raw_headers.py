"""Header names of any bytes, as librdkafka and Java producers can send them."""

from __future__ import annotations


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
