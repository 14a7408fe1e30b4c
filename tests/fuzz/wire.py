"""What any producer can put on the wire: a valid or mutated event as the value, a key of any
bytes and length, headers with names of any bytes and null, empty, duplicate, binary and huge
values, any timestamp."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from city import topics
from tests.fuzz.messages import ANY_TEXT, BUILDERS, Message, dumps
from tests.fuzz.mutations import field_mutation, value_mutation
from tests.raw_headers import has_raw_name, header_name

_KNOWN_NAMES = st.sampled_from(
    ("traceparent", "vtops.origin", "vtops.watermark", "vtops.redriven-from", "x", "")
)
# Names of any bytes (librdkafka and Java producers send them) one time in nine: a name that
# is not UTF-8 makes its message a dead letter, and most messages should stay valid.
_HEADER_NAMES = st.one_of(
    *[_KNOWN_NAMES, ANY_TEXT] * 4, st.binary(min_size=1, max_size=6).map(header_name)
)
_HEADER_VALUES = (
    st.none()
    | st.just(b"")
    | st.binary(max_size=32)
    | st.integers(16 * 1024, 100 * 1024).map(lambda n: b"\xff" * n)
)


def keys(contract_key: str) -> st.SearchStrategy[bytes | None]:
    """The key producers are told to use, or any bytes of any length, or none."""
    return st.one_of(
        st.just(contract_key.encode()),
        st.just(contract_key.encode()),
        st.none(),
        st.binary(max_size=40),
        st.integers(1_000, 20_000).map(lambda n: b"\x00k" * (n // 2)),
    )


@st.composite
def messages(draw: st.DrawFn, now_ms: int) -> Message:
    topic = draw(st.sampled_from(sorted(BUILDERS)))
    builder, key_field = BUILDERS[topic]
    built = draw(builder(now_ms))
    key = draw(keys(str(built.event[key_field])))
    headers = tuple(draw(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=4)))
    # Before 2023: the broker refuses timestamps more than an hour ahead of its clock.
    timestamp_ms = draw(st.none() | st.integers(0, 1_700_000_000_000))
    how = draw(st.sampled_from(("valid", "valid", "valid", "field", "field", "value")))
    event, blame = None, frozenset({"payload"})
    value: bytes | None
    # The key decides which partition holds a camera's windows (contract section 3).
    wrong_key = topic == topics.CAMERA_EVENTS and key != str(built.event["camera_id"]).encode()
    if how == "valid":
        value = dumps(built.wire) if draw(st.booleans()) else _ascii_json(built.wire)
        event, blame = built.event, frozenset()
        if wrong_key:
            event, blame = None, frozenset({"key"})
    elif how == "value":
        value = draw(value_mutation(built))
    else:
        value, blame = draw(field_mutation(topic, built, now_ms))
        if wrong_key:  # either may be named: the field the schema refuses, or the key
            blame |= {"key"}
    if key is None and value is None:  # no client of ours sends neither (Java's can)
        key = b""
    if has_raw_name(headers):
        # The only producer here that writes such a name (kafka-python) refuses null values.
        headers = tuple((name, b"" if v is None else v) for name, v in headers)
        event, blame = None, frozenset({"headers"})
    return Message(topic, key, value, headers, timestamp_ms, event, blame)


def _ascii_json(wire: dict[str, Any]) -> bytes:
    """The same JSON with every non-ASCII character escaped (\\uXXXX, surrogate pairs)."""
    return json.dumps(wire, ensure_ascii=True).encode()


@st.composite
def batches(draw: st.DrawFn, now_ms: int, max_size: int) -> list[Message]:
    """Messages for every topic, and copies of some valid ones (re-sent with the same key)."""
    batch = draw(st.lists(messages(now_ms), min_size=1, max_size=max_size))
    valid = [m for m in batch if m.event is not None]
    if valid:
        batch += draw(st.lists(st.sampled_from(valid), max_size=2))
    return batch
