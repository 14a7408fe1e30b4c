"""The fuzzer's messages through each stream's own decoding and wall-clock check, in-process,
each first written into a Kafka record batch and read back by the engine's own batch reader
(streams/engine/record_batches.py, what a poll aiokafka cannot read goes through): thousands
of examples a second, so that a reason that names no field or quotes a value is
found here before the worker runs (tests/fuzz/test_worker.py)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
from aiokafka import ConsumerRecord, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatchBuilder

from city.profile import load_city_profile
from schemas.dead_letter import dead_letter, original_headers, original_key, original_value
from schemas.exceptions import InvalidEvent
from streams.app import domain_streams
from streams.engine.definition import DomainStream
from streams.engine.record_batches import records_in, refuse_unreadable
from streams.engine.skew import reject_far_future
from streams.engine.window_stage import decode_keyed
from streams.settings import StreamSettings
from tests.fuzz.messages import METHODS, SKEW_S, Message
from tests.fuzz.settings import EXAMPLES
from tests.fuzz.verdicts import reason_problem
from tests.fuzz.wire import messages
from tests.raw_headers import kept_headers

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


def read_back(message: Message) -> ConsumerRecord:
    """The message as a poll read byte by byte gives it to a stage."""
    builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 22)
    timestamp = message.timestamp_ms or 0
    builder.append(0, timestamp, message.key, message.value, list(message.headers))
    (record,) = records_in(TopicPartition(message.topic, 0), bytes(builder.build()), 0).records
    assert (record.key, record.value, record.timestamp) == (message.key, message.value, timestamp)
    return record


@settings(max_examples=EXAMPLES * 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_message_is_valid_as_the_contract_says_or_refused_naming_its_field(
    data: st.DataObject,
) -> None:
    message = data.draw(messages(int(time.time() * 1000)))
    record = read_back(message)
    try:
        refuse_unreadable(record)
        event = judge(message.topic, record.key, record.value)
    except InvalidEvent as refused:
        assert message.event is None, f"a valid event refused: {refused.reason}"
        problem = reason_problem(refused.reason, message.blame)
        assert problem is None, problem
        assert_letter_gives_it_back(message, record, refused.reason)
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


def assert_letter_gives_it_back(message: Message, record: ConsumerRecord, reason: str) -> None:
    """The dead letter of the message is JSON and gives back what it kept of it."""
    letter = orjson.loads(
        orjson.dumps(
            dead_letter(message.topic, 0, 0, record.value, reason, record.key, record.headers, None)
        )
    )
    if letter["payload_bytes"] is None:
        assert original_value(letter) == (message.value or b"")
    if letter["origin_bytes"] is None:
        assert original_key(letter) == message.key
        assert original_headers(letter) == kept_headers(message.headers)
