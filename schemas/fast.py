"""The hot loop's decoder: msgspec structs that mirror the pydantic models, pydantic for reasons.

Each struct here accepts what its pydantic model (schemas/camera.py, payments.py, portal.py)
accepts and exposes the same attributes with the same values and types, in about half the time.
Only the happy path is msgspec's: whatever it refuses goes to `schemas.decoding.decode`, so a
dead letter's reason is pydantic's, word for word. tests/schemas/test_fast_decoding.py holds the
two to each other; a constraint changed in one place and not the other fails it. It also lists
what pydantic alone accepts, all of it outside JSON's rules: a repeated key whose earlier value
is invalid, and NaN or Infinity in a field no model knows. Those are refused here."""

from __future__ import annotations

import logging
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    NoReturn,
    TypeVar,
    final,
)

import msgspec
from msgspec import Meta, Struct
from msgspec.structs import force_setattr
from pydantic import TypeAdapter

from schemas.camera import CAMERA_EVENT, CameraStatus, Direction, VehicleClass, ViolationType
from schemas.decoding import MAX_EVENT_BYTES, decode
from schemas.exceptions import InvalidEvent
from schemas.fields import _EARLIEST_MS, _LATEST_MS, to_epoch_ms
from schemas.payments import (
    MAX_AMOUNT_VND,
    MAX_COUNT,
    MAX_PERIOD_MS,
    TERMINAL_COUNTS,
    PaymentCategory,
)
from schemas.portal import PORTAL_TRANSACTION, Auth, Channel, DossierStatus, ServiceLevel

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    EpochMs = int
else:
    # Epoch ms within fields.to_epoch_ms's bounds, checked by msgspec in C, or an RFC 3339
    # string that __post_init__ turns into epoch ms with that same function. msgspec refuses
    # booleans and floats for `int | str` by itself.
    EpochMs = Annotated[int, Meta(ge=_EARLIEST_MS, lt=_LATEST_MS)] | str

EventId = Annotated[str, Meta(min_length=1, max_length=64)]
Id64 = Annotated[str, Meta(min_length=1, max_length=64)]


# camera.events: a union tagged by `kind`. msgspec keeps the tag off the instance, so a class
# attribute gives `event.kind` as pydantic's models have it. The three kinds are final: the hot
# path tells them apart by `type(event) is`, cheaper than isinstance on a msgspec struct.


class _CameraEvent(Struct, frozen=True, kw_only=True, tag_field="kind"):
    event_id: EventId
    camera_id: Id64
    ts: EpochMs

    def __post_init__(self) -> None:
        # Checked inline, not through a helper: a third off the common case, an int `ts`.
        if isinstance(self.ts, str):
            force_setattr(self, "ts", to_epoch_ms(self.ts))


Plate = Annotated[str, Meta(max_length=16)]
Speed = Annotated[float, Meta(ge=0, le=250)]


@final
class Passage(_CameraEvent, frozen=True, tag="passage"):
    kind: ClassVar[Literal["passage"]] = "passage"
    vehicle_class: VehicleClass
    lane: Annotated[int, Meta(ge=1, le=16)] | None = None
    direction: Direction | None = None
    speed_kmh: Speed | None = None
    plate: Plate | None = None


@final
class Violation(_CameraEvent, frozen=True, tag="violation"):
    kind: ClassVar[Literal["violation"]] = "violation"
    vehicle_class: VehicleClass
    violation_type: ViolationType
    speed_kmh: Speed | None = None
    plate: Plate | None = None


@final
class StatusReport(_CameraEvent, frozen=True, tag="status"):
    kind: ClassVar[Literal["status"]] = "status"
    status: CameraStatus


CameraEvent = Passage | Violation | StatusReport

# payments.terminal-counts

Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
Amount = Annotated[int, Meta(ge=0, le=MAX_AMOUNT_VND)]


class _ByMethod(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class MethodCounts(_ByMethod, frozen=True):
    cash: Count = 0
    vietqr: Count = 0
    card: Count = 0
    ewallet: Count = 0
    bank_transfer: Count = 0


class MethodAmounts(_ByMethod, frozen=True):
    cash: Amount = 0
    vietqr: Amount = 0
    card: Amount = 0
    ewallet: Amount = 0
    bank_transfer: Amount = 0


class TerminalCounts(Struct, frozen=True, kw_only=True):
    event_id: EventId
    terminal_id: Id64
    merchant_id: Id64
    ward: Id64
    category: PaymentCategory
    period_start: EpochMs
    period_end: EpochMs
    counts: MethodCounts
    amounts_vnd: MethodAmounts | None = None

    def __post_init__(self) -> None:
        # Inline, as for camera events: a helper's call per time cost ~0.3 µs an event.
        if isinstance(self.period_start, str):
            force_setattr(self, "period_start", to_epoch_ms(self.period_start))
        if isinstance(self.period_end, str):
            force_setattr(self, "period_end", to_epoch_ms(self.period_end))
        # TerminalCounts._within_an_hour_after_start
        if not 0 < self.period_end - self.period_start <= MAX_PERIOD_MS:
            raise ValueError("period_end must be after period_start, by at most an hour")


# portal.transactions

ProcedureCode = Annotated[str, Meta(min_length=1, max_length=32)]


class PortalTransaction(Struct, frozen=True, kw_only=True):
    event_id: EventId
    dossier_id: Id64
    procedure_code: ProcedureCode
    agency: Id64
    ts: EpochMs
    status: DossierStatus
    channel: Channel | None = None
    service_level: ServiceLevel | None = None
    auth: Auth | None = None
    due_at: EpochMs | None = None
    paid_online: bool | None = None
    signed: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.ts, str):
            force_setattr(self, "ts", to_epoch_ms(self.ts))
        if isinstance(self.due_at, str):
            force_setattr(self, "due_at", to_epoch_ms(self.due_at))
        # PortalTransaction._required_on_submission
        if self.channel is None and self.status == "submitted":
            raise ValueError("channel is required when status is 'submitted'")


CAMERA_DECODER = msgspec.json.Decoder(CameraEvent)
TERMINAL_COUNTS_DECODER = msgspec.json.Decoder(TerminalCounts)
PORTAL_TRANSACTION_DECODER = msgspec.json.Decoder(PortalTransaction)

S = TypeVar("S")

# pydantic's JSON parser refuses invalid UTF-8 and nesting deeper than 200 levels anywhere in a
# message; msgspec checks neither in the unknown fields it skips. A message that could hold them
# has non-ASCII bytes, or more than _NESTING brackets (in strings too: a false alarm costs a
# pydantic decode, nothing more) and so, balanced as msgspec wants them, over twice as many bytes.
_NESTING = 150


def _reason(error: Exception) -> str:
    # "Expected `int`, got `str` - at `$.counts.cash`" → "counts.cash: Expected `int`, got `str`"
    message, _, where = str(error).partition(" - at `$")
    return f"{where.strip('.`') or 'payload'}: {message}"


def _refuse(adapter: TypeAdapter[Any], raw: bytes | None, tagged: bool, refusal: str) -> NoReturn:
    decode(adapter, raw, tagged=tagged)  # raises InvalidEvent with the canonical reason, or:
    logger.warning("fast decoder refused an event pydantic accepts reason=%r", refusal)
    raise InvalidEvent(refusal)


def _skips_what_pydantic_refuses(raw: bytes) -> bool:
    if not raw.isascii():
        try:
            raw.decode()
        except UnicodeDecodeError:
            return True
    return raw.count(b"[") + raw.count(b"{") > _NESTING


class FastDecoder(Generic[S]):
    """One schema's hot-path decoder: msgspec's `decoder`, held to pydantic's `adapter`.

    `adapter` and `tagged` are what `schemas.decoding.decode` takes for the same schema. A
    value that msgspec refuses and pydantic accepts is refused all the same, with msgspec's
    reason, and a warning says the two schemas disagree. A class, so that a stream's decode is
    one call (a bound method) and not a function calling a function, per event (issue 20).
    """

    def __init__(
        self, decoder: msgspec.json.Decoder[S], adapter: TypeAdapter[Any], *, tagged: bool
    ) -> None:
        self._decoder = decoder
        self._adapter = adapter
        self._tagged = tagged

    def decode(self, raw: bytes | None) -> S:
        """The event in one message value; InvalidEvent with pydantic's reason otherwise."""
        if raw is None or len(raw) > MAX_EVENT_BYTES:
            _refuse(self._adapter, raw, self._tagged, "payload: empty or oversize")
        try:
            event = self._decoder.decode(raw)
        except (msgspec.MsgspecError, RecursionError) as error:  # deep nesting: RecursionError
            _refuse(self._adapter, raw, self._tagged, _reason(error))
        if (not raw.isascii() or len(raw) > 2 * _NESTING) and _skips_what_pydantic_refuses(raw):
            decode(self._adapter, raw, tagged=self._tagged)  # raises InvalidEvent, or agrees
        return event


decode_camera_event = FastDecoder(CAMERA_DECODER, CAMERA_EVENT, tagged=True).decode
decode_terminal_counts = FastDecoder(TERMINAL_COUNTS_DECODER, TERMINAL_COUNTS, tagged=False).decode
decode_portal_transaction = FastDecoder(
    PORTAL_TRANSACTION_DECODER, PORTAL_TRANSACTION, tagged=False
).decode
