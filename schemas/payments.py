"""payments.terminal-counts (contract section 4): one terminal's tally over a reporting period.

The ward is checked against the city profile by the stream (streams/payments.py), as unknown
cameras are: the schema knows the contract, the profile knows the city.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from schemas.fields import EpochMs, EventId, Id64

PaymentMethod = Literal["cash", "vietqr", "card", "ewallet", "bank_transfer"]
PaymentCategory = Literal[
    "grocery", "market", "restaurant", "retail", "fuel",
    "utility_electricity", "utility_water", "utility_telecom", "other",
]  # fmt: skip

METHODS: tuple[PaymentMethod, ...] = ("cash", "vietqr", "card", "ewallet", "bank_transfer")
CASHLESS_METHODS: tuple[PaymentMethod, ...] = ("vietqr", "card", "ewallet", "bank_transfer")
MAX_PERIOD_MS = 3_600_000

# "Out of range" bounds (contract section 4) from which a window's sums are bounded (v1.2,
# section 5: no aggregate overflows on valid input). A window holds fewer than 2^63 tallies (at
# most one per offset of its partition), so its method counts stay below 2^63 * 10^7 < 2^87
# and its cashless amount below 2^63 * 4 * 10^13 < 2^109: they are Python ints in memory,
# decimal text in the saved state and UInt128 in payments_cashless_1h. (UInt64, as before,
# held 461 thousand tallies of the largest amounts, not the million once claimed here.)
MAX_COUNT = 10_000_000  # payments of one method at one terminal in at most an hour
MAX_AMOUNT_VND = 10_000_000_000_000  # 10 trillion VND

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT_VND)]


class _ByMethod(BaseModel):
    # Another key is invalid (contract); strict: 3.0 and true are not counts.
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class MethodCounts(_ByMethod):
    """Payments by method; a missing method is 0."""

    cash: Count = 0
    vietqr: Count = 0
    card: Count = 0
    ewallet: Count = 0
    bank_transfer: Count = 0


class MethodAmounts(_ByMethod):
    """Amounts in VND by method; a missing method is 0."""

    cash: Amount = 0
    vietqr: Amount = 0
    card: Amount = 0
    ewallet: Amount = 0
    bank_transfer: Amount = 0


def _json_object(value: Any) -> Any:
    # pydantic's own "not an object" error for a nested model carries no field name in our
    # reasons (schemas/decoding.py reports it as the payload's); say it here, under the field.
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object keyed by method")
    return value


def _json_object_or_null(value: Any) -> Any:
    return None if value is None else _json_object(value)


class TerminalCounts(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    event_id: EventId
    terminal_id: Id64
    merchant_id: Id64
    ward: Id64
    category: PaymentCategory
    period_start: EpochMs
    period_end: EpochMs
    counts: Annotated[MethodCounts, BeforeValidator(_json_object)]
    amounts_vnd: Annotated[MethodAmounts | None, BeforeValidator(_json_object_or_null)] = None

    @field_validator("period_end")
    @classmethod
    def _within_an_hour_after_start(cls, period_end: int, info: ValidationInfo) -> int:
        # Fields validate in order: period_start is in info.data unless it was itself invalid.
        period_start = info.data.get("period_start")
        if period_start is None:
            return period_end
        if period_end <= period_start:
            raise ValueError("must be after period_start")
        if period_end - period_start > MAX_PERIOD_MS:
            raise ValueError("must be at most 1 hour after period_start")
        return period_end


TERMINAL_COUNTS: TypeAdapter[TerminalCounts] = TypeAdapter(TerminalCounts)
