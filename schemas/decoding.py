"""Turning raw Kafka values into validated events, or into a reason that names the field."""

from __future__ import annotations

from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from schemas.exceptions import InvalidEvent

MAX_EVENT_BYTES = 64 * 1024

T = TypeVar("T")


def _describe(error: ValidationError, tagged: bool) -> str:
    first = error.errors(include_url=False)[0]
    loc = first["loc"][1:] if tagged and len(first["loc"]) > 1 else first["loc"]
    path = ".".join(str(part) for part in loc)
    context = first.get("ctx", {})
    if first["type"] == "union_tag_invalid":
        tag = context.get("discriminator", "kind").strip("'")
        expected = context.get("expected_tags")
        return f"{tag}: unknown value, expected one of {expected}"
    if first["type"] == "union_tag_not_found":
        return f"{context.get('discriminator', 'kind').strip(chr(39))}: field required"
    if first["type"] == "json_invalid":
        return f"payload: invalid JSON ({first['msg']})"
    if first["type"] == "model_type":
        return "payload: must be a JSON object"
    if first["type"] == "extra_forbidden":
        # The last part of the path is the producer's own key: name its object instead.
        parent = ".".join(str(part) for part in loc[:-1])
        return f"{parent or 'payload'}: a key the contract does not know"
    # The rejected value stays out: a reason is readable by more people than the payload is
    # (a plate must not reach the dashboards through it).
    message = first["msg"].removeprefix("Value error, ")
    return f"{path or 'payload'}: {message}"


def decode(adapter: TypeAdapter[T], raw: bytes | None, *, tagged: bool = False) -> T:
    """Validate one message value; raise InvalidEvent naming the offending field.

    `tagged` says the adapter is a union discriminated by a field, whose tag pydantic puts
    first in an error's path; the reason leaves it out so that it names the field alone.
    """
    if raw is None:
        raise InvalidEvent("payload: empty message")
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"payload: {len(raw)} bytes is over the 64 KiB limit")
    try:
        return adapter.validate_json(raw)
    except ValidationError as error:
        raise InvalidEvent(_describe(error, tagged)) from None
