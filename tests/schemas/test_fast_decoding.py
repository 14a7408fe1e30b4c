"""schemas/fast.py against pydantic: the same verdict, the same values, the same reasons.

Every case goes through `schemas.decoding.decode` and the fast decoder of its schema; both must
accept it with equal attributes, or both reject it with the identical reason. The cases include
every malformed message of the pipeline tests (`INVALID` in tests/streams/test_*_pipeline.py).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from random import Random
from typing import Annotated, Any

import msgspec
import pytest
from msgspec import Meta
from pydantic import BaseModel, TypeAdapter

from city.profile import load_city_profile
from schemas import fast
from schemas.camera import CAMERA_EVENT, VEHICLE_CLASSES
from schemas.decoding import MAX_EVENT_BYTES, decode
from schemas.exceptions import InvalidEvent
from schemas.payments import MAX_AMOUNT_VND, MAX_COUNT, MAX_PERIOD_MS, METHODS, TERMINAL_COUNTS
from schemas.portal import PORTAL_TRANSACTION
from simulator.payments import TerminalTallies
from simulator.portal import DossierSteps
from simulator.traffic import camera_events
from tests.factories import passage, random_traffic, status, violation
from tests.factories_payments import random_tallies, tally
from tests.factories_portal import random_dossiers, step

Event = dict[str, Any]
FastDecode = Callable[[bytes | None], object]

T0 = 1_726_272_000_000  # 2024-09-14T07:00:00+07:00
MINUS_HALF_HOUR = timezone(-timedelta(minutes=30))
EARLIEST, LATEST = 946_684_800_000, 4_102_444_800_000  # schemas/fields.py: [2000, 2100)

# Any field may get any of these: wrong types, empty and long strings, unicode by code points.
ANY_VALUE: list[Any] = [
    None, True, False, 0, 1, -1, 2.0, 1.5, -0.0, 10**20, "", "x", "3", "true", [], {}, [1],
    {"a": 1}, "x" * 16, "x" * 17, "x" * 32, "x" * 33, "x" * 64, "x" * 65, "ư" * 64, "ư" * 65,
    "😀" * 16, "😀" * 17, "Vũng Tàu", "a\u0000b", "e\u0301",
]  # fmt: skip
TIMES: list[Any] = [
    T0, EARLIEST - 1, EARLIEST, LATEST - 1, LATEST, 0, -1, 12, 1_726_273_865_120,
    1_726_273_865_120.0, 1.5e12, 1_726_273_865_120.5, True, False, None, "", "T", "yesterday",
    "2024-09-14T07:31:05.120+07:00", "2024-09-14T00:31:05.120Z", "2024-09-14T00:31:05.120z",
    "2024-09-14T00:01:05.120-00:30", "2024-09-14T00:31:05+00:00", "2024-09-14T00:31:05-00:00",
    "2024-09-14T14:31:05+14:00", "2024-09-14T07:31:05+0700", "2024-09-14T07:31:05+07",
    "2024-09-14T07:31:05.1+07:00", "2024-09-14T07:31:05.12+07:00", "2024-09-14T07:31:05.1234Z",
    "2024-09-14T07:31:05.123456Z", "2024-09-14T07:31:05.1234567Z", "2024-09-14T07:31:05.0005Z",
    "2024-09-14T07:31:05.0015Z", "2024-09-14T07:31:05,123Z", "2024-09-14T07:31Z",
    "2024-09-14T07Z", "2024-09-14 07:31:05+07:00", "2024-09-14t07:31:05Z", "20240914T073105Z",
    "2024-W37-6T07:00:00Z", "2024-258T07:00:00Z", "2024-09-14T23:59:60Z", "2024-09-14T24:00:00Z",
    "2024-02-30T00:00:00Z", "2024-09-14T07:00:00", "2024-09-15T09:00:00", "2024-09-14",
    "2024-09-20", "2024-09-14T07:31:05+25:00",
    "1999-12-31T23:59:59.999Z", "1999-12-31T23:59:59.9995Z", "2000-01-01T00:00:00Z",
    "2000-01-01T06:59:59.999+07:00", "2099-12-31T23:59:59.999Z", "2099-12-31T23:59:59.9995Z",
    "2100-01-01T00:00:00Z", "2100-01-01T06:00:00+07:00", "0001-01-01T00:00:00+01:00",
]  # fmt: skip
BOOLS: list[Any] = [True, False, None, 0, 1, "true", "yes"]
# Raw JSON after a valid event's last field: numbers, a repeated key (the last one counts).
TAILS = [
    b'"lane":01', b'"lane":1e0', b'"lane":-0', b'"speed_kmh":1e400', b'"speed_kmh":-1e400',
    b'"speed_kmh":1E2', b'"speed_kmh":2.5e-400', b'"ts":1726273865120', b'"ts":"x"',
    b'"counts":{"cash":1,"cash":-1}', b'"counts":{"cash":1,"paypal":1,"card":2}',
]  # fmt: skip
# Raw string contents: invalid UTF-8 (a surrogate, overlong, beyond U+10FFFF), escapes.
TEXTS = [
    b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xc3\xa9", b"\x01",
    b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"\\ud83d\\ude00", b"\\u00e9", b"\\x",
    b"\\uZZZZ", b"\\/",
]  # fmt: skip
# Raw values of a field no model knows: msgspec skips them, pydantic's parser reads them.
JUNK = [b"01", b"1.", b"-", b"[1,]", b'{"a":1,}', b"tru", b"1e999", b"-0", b'{"a":[null,{}]}']
DEPTHS = [50, 148, 149, 150, 151, 198, 199, 200, 201, 300, 994, 995, 996, 5000]


def _enum(*values: Any) -> list[Any]:
    return [*values, *(v.upper() for v in values if isinstance(v, str))]


@dataclass
class Schema:
    adapter: TypeAdapter[Any]
    fast_decode: FastDecode
    tagged: bool
    bases: list[Event]
    fields: dict[str, list[Any]] = field(default_factory=dict)  # name → values of its own

    def pydantic(self, raw: bytes | None) -> object:
        return decode(self.adapter, raw, tagged=self.tagged)


CAMERA = Schema(
    CAMERA_EVENT,
    fast.decode_camera_event,
    True,
    [
        passage("e1", "VT-CAM-001", T0),
        {
            **passage("e2", "VT-CAM-002", T0, "car", 42.5),
            "ts": "2024-09-14T07:31:05.120+07:00",
            "lane": 3,
            "direction": "inbound",
            "plate": "72A-123.45",
        },
        violation("e3", "VT-CAM-003", T0),
        status("e4", "VT-CAM-004", T0),
    ],
)
CAMERA.fields = {
    "event_id": [], "camera_id": [], "ts": TIMES, "colour": [],
    "kind": ["passage", "violation", "status", "drone", "Passage"],
    "vehicle_class": _enum(*VEHICLE_CLASSES, "tank"),
    "lane": [0, 1, 16, 17, "3", 3.0, 2**63],
    "direction": _enum("inbound", "outbound", "up"),
    "speed_kmh": [0, 0.0, 250, 250.0, 250.0000001, 251, 400, -0.0001, 42.5, 1e-300, 1e300, "fast"],
    "plate": ["7" * 16, "7" * 17, "72-B1 123.45", "72A-123.45-EXTRA-LONG"],
    "violation_type": _enum("red_light", "speeding", "illegal_parking", "jaywalking"),
    "status": _enum("online", "offline", "degraded", "tampered", "asleep"),
}  # fmt: skip

BY_METHOD: list[Any] = [
    {}, {"cash": 1, "paypal": 2}, {"Cash": 1}, {"cash": 1, "note": None},
    {"vietqr": -3}, {"cash": "many"},
    *({m: v} for m in METHODS for v in [-1, 0, 1, 2.0, 1.5, "3", True, None, 10**20]),
    *({m: v} for m in ["cash", "bank_transfer"] for v in [MAX_COUNT, MAX_COUNT + 1]),
    *({m: v} for m in ["vietqr", "card"] for v in [MAX_AMOUNT_VND, MAX_AMOUNT_VND + 1]),
]  # fmt: skip
PAYMENTS = Schema(
    TERMINAL_COUNTS,
    fast.decode_terminal_counts,
    False,
    [
        tally("p1", "VT-T-00001", T0),
        {
            **tally("p2", "VT-T-00002", T0, 60, amounts={"vietqr": 450_000}),
            "period_start": "2024-09-14T07:00:00+07:00",
            "period_end": "2024-09-14T01:00:00Z",
        },
    ],
)
PAYMENTS.fields = {
    "event_id": [], "terminal_id": [], "merchant_id": [], "ward": ["phuong-6"], "note": [],
    "category": _enum("grocery", "utility_telecom", "other", "bank", "casino"),
    "period_start": TIMES, "period_end": TIMES, "counts": BY_METHOD, "amounts_vnd": BY_METHOD,
}  # fmt: skip

PORTAL = Schema(
    PORTAL_TRANSACTION,
    fast.decode_portal_transaction,
    False,
    [
        step("d1-s", "D-1", "2024-09-14T07:00:00+07:00", "submitted"),
        step("d1-r", "D-1", T0 + 1, "resolved", due_at=T0 + 2, signed=True),
        step("d2-s", "D-2", T0, "submitted", channel="counter", service_level="full",
             auth="vneid_l2", paid_online=False, due_at="2024-09-20T17:00:00+07:00"),
    ],
)  # fmt: skip
PORTAL.fields = {
    "event_id": [], "dossier_id": [], "agency": [], "applicant": [], "ts": TIMES,
    "procedure_code": ["1." + "0" * 30, "1." + "0" * 31, "1.001193"],
    "status": _enum("submitted", "accepted", "supplement_requested", "resolved", "rejected",
                    "withdrawn", "lost"),
    "channel": _enum("online", "counter", "postal", "fax"),
    "service_level": _enum("full", "partial", "level4"),
    "auth": _enum("vneid_l2", "vneid_l1", "portal_account", "none", "password"),
    "due_at": TIMES, "paid_online": BOOLS, "signed": BOOLS,
}  # fmt: skip
SCHEMAS = {"camera": CAMERA, "payments": PAYMENTS, "portal": PORTAL}


def _outcome(decode_one: FastDecode, raw: bytes | None) -> tuple[bool, object]:
    try:
        return True, decode_one(raw)
    except InvalidEvent as error:
        return False, error.reason


def _differences(model: BaseModel, struct: object, where: str = "") -> Iterator[str]:
    if type(struct).__name__ != type(model).__name__:
        yield f"{where}class {type(struct).__name__} vs {type(model).__name__}"
    names = set(type(model).model_fields)
    if set(getattr(type(struct), "__struct_fields__", ())) | {"kind"} != names | {"kind"}:
        yield f"{where}fields {getattr(type(struct), '__struct_fields__', ())} vs {names}"
    for name in names:
        expected, actual = getattr(model, name), getattr(struct, name, "<missing>")
        if isinstance(expected, BaseModel):
            yield from _differences(expected, actual, f"{where}{name}.")
        elif type(actual) is not type(expected) or actual != expected:
            yield f"{where}{name}: {actual!r} vs {expected!r}"


def disagreement(schema: Schema, raw: bytes | None, fast_decode: FastDecode) -> str | None:
    """How the fast decoder's verdict on `raw` differs from pydantic's, or None."""
    (ok, expected), (fast_ok, actual) = _outcome(schema.pydantic, raw), _outcome(fast_decode, raw)
    shown = repr(raw)[:200]
    if ok != fast_ok:
        return f"{shown}: pydantic {'accepts' if ok else 'rejects'} ({expected}), fast {actual}"
    if not ok:
        return None if actual == expected else f"{shown}: reason {actual!r} vs {expected!r}"
    assert isinstance(expected, BaseModel)
    found = list(_differences(expected, actual))
    return f"{shown}: {'; '.join(found)}" if found else None


def _dumps(event: object) -> bytes:
    # Not orjson: it refuses integers beyond 64 bits, which are cases here.
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _tail(event: Event, tail: bytes) -> bytes:
    return _dumps(event)[:-1] + b"," + tail + b"}"


def _raw_cases(schema: Schema) -> Iterator[bytes | None]:
    yield from [None, b"", b" ", b"{not json", b"\xff\xfe\xfa", b"\xff\xfe", b"[1, 2, 3]", b"[]"]
    yield from [b'"just a string"', b"null", b"1", b"{}", b"{} {}"]
    yield b'{"event_id": "x" ' + b" " * 70_000 + b"}"
    base = _dumps(schema.bases[0])
    yield from [base + b" \n", b"\t" + base, base + b" x", b"\xef\xbb\xbf" + base, base[:-1]]
    yield base + b" " * (MAX_EVENT_BYTES - len(base))
    yield base + b" " * (MAX_EVENT_BYTES + 1 - len(base))
    for text in TEXTS:
        yield _dumps({**schema.bases[0], "event_id": "@@"}).replace(b"@@", text)
        for tail in [b'"@@":1', b'"colour":"@@"', b'"colour":{"a":["@@"]}']:
            yield _tail(schema.bases[0], tail.replace(b"@@", text))
    for value in [*JUNK, *(b"[" * d + b"]" * d for d in DEPTHS)]:
        yield _tail(schema.bases[0], b'"colour":' + value)
    yield from (
        _tail(schema.bases[0], b'"colour":' + b'{"a":' * d + b"1" + b"}" * d) for d in DEPTHS
    )
    for event, tail in itertools.product(schema.bases, TAILS):
        yield _tail(event, tail)
    for event in (e for e in schema.bases if "vehicle_class" in e):  # speed_kmh is known
        yield from (_tail(event, b'"speed_kmh":' + v) for v in [b"NaN", b"Infinity", b"-Infinity"])
    # A repeated key: the last one counts, as in pydantic (but see the repeated kind below).
    yield from (_tail(e, b'"kind":"%s"' % e["kind"].encode()) for e in schema.bases if "kind" in e)
    for event, name in itertools.product(schema.bases, schema.fields):
        yield from (_tail(event, b'"%s":%s' % (name.encode(), _dumps(v))) for v in TIMES)


def _field_cases(schema: Schema) -> Iterator[Event]:
    for event in schema.bases:
        for name, specific in schema.fields.items():
            yield {k: v for k, v in event.items() if k != name}
            for value in [*ANY_VALUE, *specific]:
                yield {**event, name: value}


def _special_cases() -> Iterator[tuple[Schema, Event]]:
    ts_start = [T0, "2024-09-14T07:00:00+07:00", "2024-09-14T00:00:00Z"]
    for start, delta, as_text in itertools.product(
        ts_start, [-1, 0, 1, 600_000, MAX_PERIOD_MS, MAX_PERIOD_MS + 1], [False, True]
    ):
        end: Any = T0 + delta
        if as_text:
            end = datetime.fromtimestamp(end / 1000, MINUS_HALF_HOUR).isoformat(
                timespec="milliseconds"
            )
        yield PAYMENTS, {**PAYMENTS.bases[0], "period_start": start, "period_end": end}
    for status_, channel in itertools.product(PORTAL.fields["status"], [None, "online", "fax", 1]):
        event = {**PORTAL.bases[0], "status": status_, "channel": channel}
        yield PORTAL, event
        yield PORTAL, {k: v for k, v in event.items() if k != "channel"}


def _simulated(schema: str, count: int) -> list[Event]:
    city, rng = load_city_profile(), Random(72)
    start = int(datetime.fromisoformat("2024-09-16T07:30:00+07:00").timestamp() * 1000)
    if schema == "camera":
        events = camera_events(city, start, start + 600_000, rng, 0.05)
        return list(itertools.islice(events, count))
    source = TerminalTallies(city, rng) if schema == "payments" else DossierSteps(city, rng)
    return [e.value for e in itertools.islice(source.events(start, start + 86_400_000, 1.0), count)]


def _random_valid(schema: str) -> list[Event]:
    rng = Random(7)
    if schema == "camera":
        cameras = [f"VT-CAM-{n:03d}" for n in range(1, 40)]
        return random_traffic(rng, cameras, minutes=30, count=3_000)
    if schema == "payments":
        return random_tallies(rng, 3_000, 3 * 3_600_000)
    return random_dossiers(rng, 1_000, T0, 86_400_000)


def _mutants(schema: Schema, events: list[Event], count: int) -> Iterator[Event]:
    """Valid events with one or two fields changed at random: errors in every combination."""
    rng = Random(11)
    for event in rng.sample(events, count):
        for name in rng.sample(sorted(schema.fields), rng.randint(1, 2)):
            event = {**event, name: rng.choice([*ANY_VALUE, *schema.fields[name]])}
        yield event


@pytest.mark.parametrize("name", SCHEMAS)
def test_fast_decoder_agrees_with_pydantic(name: str) -> None:
    schema = SCHEMAS[name]
    valid = [*_simulated(name, 3_000), *_random_valid(name)]
    events = [
        *_field_cases(schema),
        *(event for owner, event in _special_cases() if owner is schema),
        *valid,
        *_mutants(schema, valid, 2_000),
    ]
    cases = [*_raw_cases(schema), *map(_dumps, events)]
    verdicts = [_outcome(schema.pydantic, raw)[0] for raw in cases]
    found = [d for raw in cases if (d := disagreement(schema, raw, schema.fast_decode))]
    assert not found, f"{len(found)} of {len(cases)} disagree, first:\n" + "\n".join(found[:10])
    # The cases must reach both verdicts in numbers, or this test would prove little.
    assert verdicts.count(True) > 5_000 and verdicts.count(False) > 1_000


@pytest.mark.parametrize("max_length", [15, 17])
def test_a_constraint_that_drifts_from_pydantic_is_caught(max_length: int) -> None:
    plate = Annotated[str, Meta(max_length=max_length)] | None
    drifted_passage = msgspec.defstruct(
        "Passage", [("plate", plate, None)], bases=(fast.Passage,), tag="passage"
    )
    decoder = msgspec.json.Decoder(drifted_passage | fast.Violation | fast.StatusReport)

    drifted = fast.FastDecoder(decoder, CAMERA_EVENT, tagged=True).decode
    plates = ["7" * 15, "7" * 16, "7" * 17]
    found = [disagreement(CAMERA, _dumps({**CAMERA.bases[0], "plate": p}), drifted) for p in plates]
    assert sum(d is not None for d in found) == 1, found


# Beyond JSON's rules (RFC 8259) pydantic's parser takes what msgspec does not: a repeated key
# whose earlier value msgspec refuses (pydantic reads the last alone; msgspec checks each, and
# settles a struct type on the first `kind`), and NaN or infinities in a field no model knows
# (pydantic refuses them in a known field, as out of range). The fast path refuses these with
# msgspec's reason and logs a warning; a repeated key whose last value is bad is refused by both.
DIVERGENT = [
    (_tail(status("e", "VT-CAM-001", T0), b'"kind":"passage","vehicle_class":"car"'), CAMERA,
     "kind: Invalid value 'passage'"),
    (_tail({**CAMERA.bases[0], "lane": 17}, b'"lane":3'), CAMERA, "lane: Expected `int` <= 16"),
    (_tail({**PAYMENTS.bases[0], "counts": {"cash": -1}}, b'"counts":{"cash":1}'), PAYMENTS,
     "counts.cash: Expected `int` >= 0"),
    (_tail(CAMERA.bases[3], b'"speed_kmh":NaN'), CAMERA, "payload: JSON is malformed"),
    (_tail(PAYMENTS.bases[0], b'"note":Infinity'), PAYMENTS, "payload: JSON is malformed"),
    (_tail(PORTAL.bases[1], b'"score":-Infinity'), PORTAL, "payload: JSON is malformed"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "schema", "reason"), DIVERGENT)
def test_what_pydantic_alone_takes_is_refused(raw: bytes, schema: Schema, reason: str) -> None:
    schema.pydantic(raw)
    with pytest.raises(InvalidEvent) as caught:
        schema.fast_decode(raw)
    assert caught.value.reason.startswith(reason), caught.value.reason
    assert disagreement(schema, raw, schema.fast_decode) is not None
