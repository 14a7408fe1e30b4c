"""Invalid messages: a valid event mutated once, in one field or in the value as a whole.

Each field of the contract has a type; each type knows the values that break it (wrong JSON
types, bounds, absence, extreme and non-finite numbers, times at every invalid edge, unknown
enum values and ids). `blame` is what a dead letter's reason may name: the field itself, or
`payload` for a value that is not a JSON object of the right size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st

from city import topics
from tests.fuzz.messages import (
    EARLIEST_MS,
    LATEST_MS,
    SKEW_S,
    Built,
    marked,
    rfc3339,
)


def raw(token: str) -> str:
    """A JSON token orjson cannot write (non-finite numbers, integers past 64 bits): a
    placeholder string, replaced by the token once the value is dumped (`render`)."""
    return f"@@raw:{token}@@"


_RAW_TOKENS = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", str(2**64), str(-(2**63) - 1))


@dataclass(frozen=True)
class Spec:
    # id, id32, camera, ward, time, event_time, enum, int, speed, plate, bool or methods
    kind: str
    required: bool
    limits: tuple[int, int] = (0, 0)


_ID = Spec("id", True)
CAMERA = {
    "event_id": _ID,
    "camera_id": Spec("camera", True),
    "ts": Spec("event_time", True),
    "kind": Spec("enum", True),
    "vehicle_class": Spec("enum", True),
    "lane": Spec("int", False, (1, 16)),
    "direction": Spec("enum", False),
    "speed_kmh": Spec("speed", False),
    "plate": Spec("plate", False),
    "violation_type": Spec("enum", True),
    "status": Spec("enum", True),
}
PAYMENTS = {
    "event_id": _ID,
    "terminal_id": _ID,
    "merchant_id": _ID,
    "ward": Spec("ward", True),
    "category": Spec("enum", True),
    "period_start": Spec("event_time", True),
    "period_end": Spec("time", True),
    "counts": Spec("methods", True),
    "amounts_vnd": Spec("methods", False),
}
PORTAL = {
    "event_id": _ID,
    "dossier_id": _ID,
    "procedure_code": Spec("id32", True),
    "agency": _ID,
    "ts": Spec("event_time", True),
    "status": Spec("enum", True),
    "channel": Spec("enum", False),
    "service_level": Spec("enum", False),
    "auth": Spec("enum", False),
    "due_at": Spec("time", False),
    "paid_online": Spec("bool", False),
    "signed": Spec("bool", False),
}
SPECS = {
    topics.CAMERA_EVENTS: CAMERA,
    topics.PAYMENT_COUNTS: PAYMENTS,
    topics.PORTAL_TRANSACTIONS: PORTAL,
}

# A field whose breaking may be reported on another one validated against it.
ALSO_BLAMED = {"period_start": {"period_end"}}

_WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "text": (True, 1, 1.5, [], {}),
    "time": (True, False, 1.5e12, [], {}, 0.0),
    "number": (True, [], {}, "1"),
    "bool": ("true", 1, 0, [], {}),
    "methods": (1, [], True),
}


def _too_long(limit: int) -> st.SearchStrategy[str]:
    return marked().map(
        lambda text: (text * (limit // max(len(text), 1) + 2))[: limit + 1 + len(text) % 7]
    )


@st.composite
def breaking(draw: st.DrawFn, spec: Spec, now_ms: int) -> Any:
    """A value that the contract refuses for a field of `spec`'s type."""
    kind = spec.kind
    if kind in ("id", "id32", "camera", "ward", "plate"):
        limit = {"id": 64, "id32": 32, "plate": 16}.get(kind, 64)
        options = [st.sampled_from(_WRONG_TYPES["text"]), _too_long(limit)]
        if kind != "plate":
            options.append(st.just(""))
        if kind in ("camera", "ward"):
            options.append(marked(64))  # not a camera, not a ward of the city profile
        return draw(st.one_of(options))
    if kind == "enum":
        return draw(
            st.sampled_from(_WRONG_TYPES["text"])
            | marked()
            | st.sampled_from(("PASSAGE", "Online", " car"))
        )
    if kind in ("time", "event_time"):
        bad = [
            "2024-09-14T07:31:05",  # no offset
            "2024-09-14",
            "07:31:05Z",
            "2024-09-14T07:31:05+0700",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-09-14T24:00:00Z",
            "2024-09-14T07:31:05+25:00",
            "2024-09-14T07:31:05.Z",
            "2024-09-14T07:31:60Z",  # a leap second anywhere but 23:59:60 UTC
            EARLIEST_MS - 1,
            LATEST_MS,
            -1,
            raw(str(2**64)),
            rfc3339(EARLIEST_MS - 1000, "Z", "T", 0)[0],
            rfc3339(LATEST_MS, "+07:00", "T", 3)[0],
        ]
        if kind == "event_time":  # further ahead of the wall clock than the skew bound
            ahead = now_ms + (SKEW_S + 600) * 1000
            bad += [ahead, rfc3339(ahead, "+07:00", "T", 3)[0]]
        return draw(st.sampled_from(bad) | st.sampled_from(_WRONG_TYPES["time"]) | marked())
    if kind == "int":
        low, high = spec.limits
        return draw(
            st.sampled_from((low - 1, high + 1, 3.0, raw(str(2**64)), raw(str(-(2**63) - 1)), "3"))
            | st.sampled_from(_WRONG_TYPES["number"])
        )
    if kind == "speed":
        return draw(
            st.sampled_from((-0.001, 250.0001, 1e308, -1e308, 2**62))
            | st.sampled_from(_WRONG_TYPES["number"])
            | st.sampled_from(_RAW_TOKENS).map(raw)
        )
    if kind == "bool":
        return draw(st.sampled_from(_WRONG_TYPES["bool"]))
    assert kind == "methods"
    limit = 10_000_000 if spec.required else 10_000_000_000_000
    method = st.sampled_from(("cash", "vietqr", "card", "ewallet", "bank_transfer"))
    return draw(
        st.sampled_from(_WRONG_TYPES["methods"])
        | marked()
        | st.builds(lambda k: {k: 1}, marked())  # a method the contract does not know
        | st.builds(
            lambda m, v: {m: v},
            method,
            st.sampled_from((-1, limit + 1, 1.0, True, "1", None, raw(str(2**64)))),
        )
    )


def render(wire: dict[str, Any]) -> bytes:
    """The value's JSON, with `raw` placeholders turned into their tokens."""
    value = orjson.dumps(wire)
    for token in _RAW_TOKENS:
        value = value.replace(orjson.dumps(raw(token)), token.encode())
    return value


@st.composite
def field_mutation(
    draw: st.DrawFn, topic: str, built: Built, now_ms: int
) -> tuple[bytes, frozenset[str]]:
    specs = SPECS[topic]
    present = [name for name in specs if name in built.wire]
    name = draw(st.sampled_from(present))
    spec = specs[name]
    wire = dict(built.wire)
    how = draw(
        st.sampled_from(("break", "break", "absent", "null") if spec.required else ("break",))
    )
    if how == "absent":
        del wire[name]
    else:  # null is as bad as absence for a required field
        wire[name] = None if how == "null" else draw(breaking(spec, now_ms))
    return render(wire), frozenset({name, *ALSO_BLAMED.get(name, ())})


@st.composite
def value_mutation(draw: st.DrawFn, built: Built) -> bytes | None:
    """A value that is no JSON object of the contract's size."""
    valid = orjson.dumps(built.wire)
    return draw(
        st.sampled_from((None, b"", b"[]", b"null", b"true", b"1", b'"x"', b"{", b"\xef\xbb\xbf{}"))
        | st.binary(max_size=64).filter(lambda raw: not raw.strip().startswith(b"{"))
        | st.just(valid[:-1])  # cut short
        | st.just(valid[:-1] + b',"pad":"' + b"x" * 65_536 + b'"}')  # over 64 KiB
        | st.just(valid[:-1] + b',"deep":' + b"[" * 300 + b"]" * 300 + b"}")
        | st.just(valid[:-1] + b',"bad":"\xff\xfe"}')  # not UTF-8
        | st.just(b"[" + valid + b"]")
    )
