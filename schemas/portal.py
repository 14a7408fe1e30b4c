"""portal.transactions (contract section 4): one step in the life of an administrative dossier."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.fields import EpochMs, EventId, Id64

DossierStatus = Literal[
    "submitted", "accepted", "supplement_requested", "resolved", "rejected", "withdrawn"
]
Channel = Literal["online", "counter", "postal"]
ServiceLevel = Literal["full", "partial"]
Auth = Literal["vneid_l2", "vneid_l1", "portal_account", "none"]

ProcedureCode = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class PortalTransaction(BaseModel):
    # Strict: "true" is not a boolean; unknown fields are ignored.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    event_id: EventId
    dossier_id: Id64
    procedure_code: ProcedureCode
    agency: Id64
    ts: EpochMs
    status: DossierStatus
    # Declared after `status`, so that its validator sees the status; validate_default: pydantic
    # runs a field validator on an absent field only when the field asks for it.
    channel: Channel | None = Field(default=None, validate_default=True)
    service_level: ServiceLevel | None = None
    auth: Auth | None = None
    due_at: EpochMs | None = None
    paid_online: bool | None = None
    signed: bool | None = None

    @field_validator("channel", mode="after")
    @classmethod
    def _required_on_submission(
        cls, channel: Channel | None, info: ValidationInfo
    ) -> Channel | None:
        # A "missing" error, so that the reason reads like any other missing field's.
        if channel is None and info.data.get("status") == "submitted":
            raise PydanticCustomError("missing", "Field required when status is 'submitted'")
        return channel


PORTAL_TRANSACTION: TypeAdapter[PortalTransaction] = TypeAdapter(PortalTransaction)
