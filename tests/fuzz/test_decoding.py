"""The fuzzer's messages through each stream's own decoding and wall-clock check, in-process:
thousands of examples a second, so that a reason that names no field or quotes a value is
found here before the worker runs (tests/fuzz/test_worker.py)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from city.profile import load_city_profile
from schemas.dead_letter import dead_letter, original_headers, original_key, original_value
from schemas.exceptions import InvalidEvent
from streams.app import domain_streams
from streams.engine.definition import DomainStream
from streams.engine.skew import reject_far_future
from streams.engine.window_stage import decode_keyed
from streams.settings import StreamSettings
from tests.fuzz.messages import METHODS, SKEW_S, Message
from tests.fuzz.settings import EXAMPLES
from tests.fuzz.verdicts import reason_problem
from tests.fuzz.wire import messages

# The worker's own streams, as it builds them.
STREAMS: dict[str, DomainStream[Any, Any]] = {
    stream.source_topic: stream for stream in domain_streams(StreamSettings(), load_city_profile())
}


def judge(topic: str, key: bytes | None, raw: bytes | None) -> Any:
    """The event the worker folds, or InvalidEvent: decode, the key, the wall clock's bound."""
    stream = STREAMS[topic]
    event = decode_keyed(stream, key, raw)
    reject_far_future(stream, event, int(time.time() * 1000) + SKEW_S * 1000)
    return event


@settings(max_examples=EXAMPLES * 15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_message_is_valid_as_the_contract_says_or_refused_naming_its_field(
    data: st.DataObject,
) -> None:
    message = data.draw(messages(int(time.time() * 1000)))
    try:
        event = judge(message.topic, message.key, message.value)
    except InvalidEvent as refused:
        assert message.event is None, f"a valid event refused: {refused.reason}"
        problem = reason_problem(refused.reason, message.blame)
        assert problem is None, problem
        assert_letter_gives_it_back(message, refused.reason)
        return
    assert message.event is not None, f"accepted, but {sorted(message.blame)} was broken"
    for name, expected in message.event.items():
        assert plain(getattr(event, name)) == plain_expected(expected), name


def plain(value: Any) -> Any:
    """A decoded field as JSON would hold it: structs (counts by method) as dicts."""
    return msgspec.structs.asdict(value) if isinstance(value, msgspec.Struct) else value


def plain_expected(value: Any) -> Any:
    """An object keyed by method: a missing method is 0."""
    return {m: value.get(m, 0) for m in METHODS} if isinstance(value, dict) else value


def assert_letter_gives_it_back(message: Message, reason: str) -> None:
    """The dead letter of the message is JSON and gives back what it kept of it."""
    letter = orjson.loads(
        orjson.dumps(
            dead_letter(
                message.topic, 0, 0, message.value, reason, message.key, message.headers, None
            )
        )
    )
    if letter["payload_bytes"] is None:
        assert original_value(letter) == (message.value or b"")
    if letter["origin_bytes"] is None:
        assert original_key(letter) == message.key
        assert original_headers(letter) == list(message.headers)
