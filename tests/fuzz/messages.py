"""Messages for the three input topics, built from the contract (section 4) by Hypothesis:
valid events, and each mutated once into an invalid one.

A `Message` carries what any producer can put on the wire (key, value, headers, timestamp) and
what the contract says of it: the valid event as the model reads it (times as epoch ms), or,
for an invalid one, the fields a dead letter's reason may name. Every string a mutation makes
up holds `MARK`, so a reason that quotes a rejected value is caught.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import strategies as st

from city import topics
from city.profile import load_city_profile

MARK = "⟦fz⟧"
# The wall clock's skew bound the fuzzed worker runs with (VTOPS_MAX_CLOCK_SKEW_S), seconds.
SKEW_S = 600
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z, the contract's first valid instant
LATEST_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z, the first invalid one

_PROFILE = load_city_profile()
CAMERAS = tuple(c.camera_id for c in _PROFILE.cameras)
WARDS = tuple(sorted(_PROFILE.ward_codes))
TERMINALS = tuple(t for payee in _PROFILE.payees for t in payee.terminals)
AGENCIES = tuple(a.agency for a in _PROFILE.agencies)
PROCEDURES = tuple(p.procedure_code for p in _PROFILE.procedures)

VEHICLE_CLASSES = ("motorbike", "car", "bus", "truck", "bicycle", "other")
VIOLATIONS = (
    "red_light", "wrong_lane", "wrong_way", "speeding", "no_helmet", "crosswalk_stop",
    "illegal_parking",
)  # fmt: skip
CAMERA_STATUSES = ("online", "offline", "degraded", "tampered")
CATEGORIES = (
    "grocery", "market", "restaurant", "retail", "fuel", "utility_electricity",
    "utility_water", "utility_telecom", "other",
)  # fmt: skip
METHODS = ("cash", "vietqr", "card", "ewallet", "bank_transfer")
MAX_COUNT = 10_000_000
MAX_AMOUNT_VND = 10_000_000_000_000
DOSSIER_STATUSES = (
    "submitted", "accepted", "supplement_requested", "resolved", "rejected", "withdrawn",
)  # fmt: skip
CHANNELS = ("online", "counter", "postal")

# Text as producers send it: any code point JSON can carry, rich markup, format strings.
_ODD = (
    "[bold]", "[/x]", "[/]", "[link=http://x]", "\x00", "\u202e", "𝕍", "<script>", "%s",
    "{0}", "\\", '"', "'", "Ω≈ç√", "\ufeff", "\u0301", "null", "😀",
)  # fmt: skip
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(_ODD)


@dataclass(frozen=True)
class Message:
    topic: str  # the contract topic, without the run's prefix
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None
    # The valid event with its times as epoch ms; None for an invalid message.
    event: dict[str, Any] | None = None
    # An invalid message: the fields its dead letter's reason may name.
    blame: frozenset[str] = field(default_factory=frozenset)


def marked(limit: int = 24) -> st.SearchStrategy[str]:
    """Made-up text that holds MARK, at most `limit` characters."""
    return st.tuples(ANY_TEXT, ANY_TEXT).map(lambda t: (t[0][:6] + MARK + t[1])[:limit])


class Ids:
    """Unique suffixes, so that only deliberate copies share an event id."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> str:
        self._next += 1
        return f"~{time.time_ns() % 10**12}.{self._next}"


NEW_ID = Ids()


@st.composite
def event_ids(draw: st.DrawFn) -> str:
    return draw(ANY_TEXT)[:30] + NEW_ID()


# -- times ---------------------------------------------------------------------------------

_OFFSETS = ("Z", "z", "+07:00", "+00:00", "-00:00", "-05:30", "+14:00", "+23:59", "-23:59")


def rfc3339(ms: int, offset: str, sep: str, digits: int) -> tuple[str, int]:
    """`ms` as RFC 3339 text in `offset` with `digits` fraction digits, and the instant that
    text denotes (fewer than 3 digits drop the rest of the millisecond)."""
    if digits < 3:
        ms -= ms % 10 ** (3 - digits)
    if offset in ("Z", "z", "+00:00", "-00:00"):
        delta = timedelta(0)
    else:
        sign = 1 if offset[0] == "+" else -1
        delta = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    local = datetime.fromtimestamp(ms / 1000, UTC) + delta
    text = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if digits:
        text += "." + f"{ms % 1000:03d}{'0' * 6}"[:digits]
    return text + offset, ms


@st.composite
def time_values(draw: st.DrawFn, ms: int) -> tuple[Any, int]:
    """A valid wire form of the instant `ms`, and the instant it denotes."""
    if draw(st.booleans()):
        return ms, ms
    offset = draw(st.sampled_from(_OFFSETS))
    text, denoted = rfc3339(
        ms, offset, draw(st.sampled_from("Tt ")), draw(st.sampled_from((0, 1, 2, 3, 6, 9)))
    )
    if ms // 1000 % 86_400 == 86_399 and draw(st.booleans()):
        # The same second as a leap second, 23:59:60 UTC: the minute's last millisecond.
        return text[:17] + "60" + text[19:], denoted - denoted % 1000 + 999
    return text, denoted


@st.composite
def instants(draw: st.DrawFn, now_ms: int) -> int:
    """An event time a producer may validly send: mostly now, and every edge the contract
    allows (window boundaries, the year 2000, just within the skew bound)."""
    kind = draw(st.sampled_from(["now"] * 6 + ["edge", "edge", "past", "ahead", "leap"]))
    if kind == "now":
        return now_ms - draw(st.integers(0, 90_000))
    if kind == "edge":  # a minute's, an hour's or a local day's first and last millisecond
        size = draw(st.sampled_from((60_000, 3_600_000)))
        start = now_ms - now_ms % size - draw(st.sampled_from((size, 2 * size)))
        return start + draw(st.sampled_from((0, size - 1, -1, size)))
    if kind == "leap":  # the last second of a UTC day, where leap seconds go
        return now_ms - now_ms % 86_400_000 - draw(st.integers(1, 1000))
    if kind == "past":
        return draw(st.sampled_from((EARLIEST_MS, EARLIEST_MS + 1, now_ms - 86_400_000)))
    return now_ms + draw(st.integers(0, (SKEW_S - 60) * 1000))


# -- valid events --------------------------------------------------------------------------


@dataclass
class Built:
    """A valid event: its wire form, and the model's reading of it."""

    wire: dict[str, Any]
    event: dict[str, Any]
    times: tuple[str, ...]  # the fields that are times


def _optional(draw: st.DrawFn, built: Built, name: str, values: st.SearchStrategy[Any]) -> None:
    """An optional field: absent, null, or a valid value."""
    choice = draw(st.sampled_from(("absent", "null", "value", "value")))
    if choice == "absent":
        return
    value = None if choice == "null" else draw(values)
    built.wire[name] = built.event[name] = value


def _extras(draw: st.DrawFn, built: Built) -> None:
    """Unknown fields are ignored (contract section 4), whatever they hold."""
    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | ANY_TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
        max_leaves=8,
    )
    for name, value in draw(st.dictionaries(marked(), json_values, max_size=2)).items():
        built.wire[name] = value


def _time_field(draw: st.DrawFn, built: Built, name: str, ms: int) -> None:
    built.wire[name], built.event[name] = draw(time_values(ms))


SPEEDS = st.floats(0, 250, allow_nan=False) | st.sampled_from((0, 250, 0.0, -0.0, 249.999999))
PLATES = st.text(st.characters(exclude_categories=["Cs"]), max_size=16) | st.sampled_from(_ODD)


@st.composite
def camera_events(draw: st.DrawFn, now_ms: int) -> Built:
    kind = draw(st.sampled_from(("passage", "passage", "passage", "violation", "status")))
    camera = draw(st.sampled_from(CAMERAS))
    built = Built({}, {}, ("ts",))
    for name, value in (("event_id", draw(event_ids())), ("camera_id", camera), ("kind", kind)):
        built.wire[name] = built.event[name] = value
    _time_field(draw, built, "ts", draw(instants(now_ms)))
    if kind == "status":
        built.wire["status"] = built.event["status"] = draw(st.sampled_from(CAMERA_STATUSES))
    else:
        built.wire["vehicle_class"] = built.event["vehicle_class"] = draw(
            st.sampled_from(VEHICLE_CLASSES)
        )
        _optional(draw, built, "speed_kmh", SPEEDS)
        _optional(draw, built, "plate", PLATES)
    if kind == "passage":
        _optional(draw, built, "lane", st.integers(1, 16))
        _optional(draw, built, "direction", st.sampled_from(("inbound", "outbound")))
    if kind == "violation":
        built.wire["violation_type"] = built.event["violation_type"] = draw(
            st.sampled_from(VIOLATIONS)
        )
    _extras(draw, built)
    return built


@st.composite
def by_method(draw: st.DrawFn, limit: int) -> dict[str, int]:
    chosen = draw(st.lists(st.sampled_from(METHODS), unique=True, max_size=5))
    values = st.integers(0, limit) | st.sampled_from((0, limit))
    return {method: draw(values) for method in chosen}


@st.composite
def terminal_counts(draw: st.DrawFn, now_ms: int) -> Built:
    built = Built({}, {}, ("period_start", "period_end"))
    fields = {
        "event_id": draw(event_ids()),
        "terminal_id": draw(st.sampled_from(TERMINALS)),
        "merchant_id": draw(ANY_TEXT.filter(bool) | st.just("M")),
        "ward": draw(st.sampled_from(WARDS)),
        "category": draw(st.sampled_from(CATEGORIES)),
        "counts": draw(by_method(MAX_COUNT)),
    }
    for name, value in fields.items():
        built.wire[name] = built.event[name] = value
    _time_field(draw, built, "period_start", draw(instants(now_ms)))
    start = built.event["period_start"]
    length = draw(st.integers(1, 3_600_000) | st.sampled_from((1, 3_600_000)))
    _time_field(draw, built, "period_end", start + length)
    if not 0 < built.event["period_end"] - start <= 3_600_000:  # a coarser fraction
        built.wire["period_end"] = built.event["period_end"] = start + length
    _optional(draw, built, "amounts_vnd", by_method(MAX_AMOUNT_VND))
    _extras(draw, built)
    return built


@st.composite
def portal_steps(draw: st.DrawFn, now_ms: int) -> Built:
    status = draw(st.sampled_from(DOSSIER_STATUSES))
    built = Built({}, {}, ("ts", "due_at"))
    fields = {
        "event_id": draw(event_ids()),
        "dossier_id": draw(ANY_TEXT.filter(bool) | st.just("D")),
        "procedure_code": draw(st.sampled_from(PROCEDURES)),
        "agency": draw(st.sampled_from(AGENCIES)),
        "status": status,
    }
    for name, value in fields.items():
        built.wire[name] = built.event[name] = value
    _time_field(draw, built, "ts", draw(instants(now_ms)))
    if status == "submitted":
        built.wire["channel"] = built.event["channel"] = draw(st.sampled_from(CHANNELS))
    else:
        _optional(draw, built, "channel", st.sampled_from(CHANNELS))
    _optional(draw, built, "service_level", st.sampled_from(("full", "partial")))
    _optional(
        draw, built, "auth", st.sampled_from(("vneid_l2", "vneid_l1", "portal_account", "none"))
    )
    _optional(draw, built, "paid_online", st.booleans())
    _optional(draw, built, "signed", st.booleans())
    if draw(st.booleans()):
        _time_field(draw, built, "due_at", draw(instants(now_ms)))
    _extras(draw, built)
    return built


# The contract topic, the event builder, the key producers use (contract section 3).
BUILDERS: dict[str, tuple[Callable[[int], st.SearchStrategy[Built]], str]] = {
    topics.CAMERA_EVENTS: (camera_events, "camera_id"),
    topics.PAYMENT_COUNTS: (terminal_counts, "terminal_id"),
    topics.PORTAL_TRANSACTIONS: (portal_steps, "dossier_id"),
}


def dumps(wire: dict[str, Any]) -> bytes:
    return orjson.dumps(wire)
