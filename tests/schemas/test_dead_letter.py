"""A dead letter keeps the original key, headers, timestamp and value, and gives them back."""

from __future__ import annotations

import orjson
import pytest

from schemas.dead_letter import (
    MAX_ORIGIN_BYTES,
    MAX_PAYLOAD_BYTES,
    dead_letter,
    original_headers,
    original_key,
    original_value,
)

# Duplicate, binary, empty and null values (Java and librdkafka producers can send a null).
HEADERS = [("traceparent", b"00-4bf92f-01"), ("bin", b"\xff\x00"), ("bin", b""), ("x", None)]


@pytest.mark.parametrize(
    ("key", "encoding"), [(b"VT-CAM-001", "utf-8"), (b"\xff\xfe\x00k", "base64"), (None, None)]
)
def test_key_headers_timestamp_and_value_round_trip_through_json(
    key: bytes | None, encoding: str | None
) -> None:
    raw = b'{"kind": "nope"}'
    letter = dead_letter("camera.events", 2, 41, raw, "kind: unknown", key, HEADERS, 1_700_000)
    assert letter["key_encoding"] == encoding
    assert letter["timestamp"] == 1_700_000
    # What a consumer of the DLQ topic reads back, duplicate and empty headers included.
    read = orjson.loads(orjson.dumps(letter))
    assert original_key(read) == key
    assert original_headers(read) == HEADERS
    assert original_value(read) == raw
    assert read["payload_encoding"] == "utf-8"


def test_a_value_that_is_not_utf8_is_base64_and_comes_back() -> None:
    letter = orjson.loads(orjson.dumps(dead_letter("t", 0, 0, b"\xff\x00bad", "payload: x")))
    assert letter["payload"] == "/wBiYWQ=" and letter["payload_encoding"] == "base64"
    assert original_value(letter) == b"\xff\x00bad"
    assert letter["key"] is None and letter["headers"] == [] and letter["timestamp"] is None


def test_a_kept_start_is_never_given_back_as_the_value() -> None:
    letter = dead_letter("t", 0, 0, b"x" * (MAX_PAYLOAD_BYTES + 1), "payload: too long")
    with pytest.raises(ValueError, match=f"first {MAX_PAYLOAD_BYTES} of"):
        original_value(letter)


def test_a_message_without_a_timestamp_has_none() -> None:
    # Kafka reports -1 for a message stored without one.
    assert dead_letter("t", 0, 0, b"{}", "kind: x", timestamp_ms=-1)["timestamp"] is None


def test_a_key_and_headers_too_long_to_keep_leave_only_their_length() -> None:
    key, headers = b"\x01" * 300_000, [("h", b"\x01" * 1000)]  # 1.8 MB of JSON escapes
    letter = dead_letter("t", 0, 0, b"\x01" * 300_000, "payload: x", key, headers, 5)
    assert letter["origin_bytes"] == 301_001
    assert letter["key"] is None and letter["headers"] == []
    assert len(orjson.dumps(letter)) < 200_000  # with the 16 KiB of the value
    for read in (original_key, original_headers):
        with pytest.raises(ValueError, match="key, headers: 301001 bytes together"):
            read(letter)


def test_a_key_and_headers_of_16_kib_together_are_kept() -> None:
    key = b"k" * (MAX_ORIGIN_BYTES - 3)
    letter = dead_letter("t", 0, 0, b"{}", "kind: x", key, [("h", b"vv")])
    assert letter["origin_bytes"] is None
    assert original_key(letter) == key and original_headers(letter) == [("h", b"vv")]
