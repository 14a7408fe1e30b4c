"""camera.events (contract section 4): passages, violations and camera health, by `kind`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from schemas.fields import EpochMs, EventId, Id64

VehicleClass = Literal["motorbike", "car", "bus", "truck", "bicycle", "other"]
Direction = Literal["inbound", "outbound"]
ViolationType = Literal[
    "red_light",
    "wrong_lane",
    "wrong_way",
    "speeding",
    "no_helmet",
    "crosswalk_stop",
    "illegal_parking",
]
CameraStatus = Literal["online", "offline", "degraded", "tampered"]

VEHICLE_CLASSES: tuple[VehicleClass, ...] = ("motorbike", "car", "bus", "truck", "bicycle", "other")

Plate = Annotated[str, StringConstraints(max_length=16)]
Speed = Annotated[float, Field(ge=0, le=250)]


class _CameraEvent(BaseModel):
    # Strict: "3" is not a lane and true is not a speed; unknown fields are ignored.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    event_id: EventId
    camera_id: Id64
    ts: EpochMs


class Passage(_CameraEvent):
    kind: Literal["passage"]
    vehicle_class: VehicleClass
    lane: Annotated[int, Field(ge=1, le=16)] | None = None
    direction: Direction | None = None
    speed_kmh: Speed | None = None
    plate: Plate | None = None


class Violation(_CameraEvent):
    kind: Literal["violation"]
    vehicle_class: VehicleClass
    violation_type: ViolationType
    speed_kmh: Speed | None = None
    plate: Plate | None = None


class StatusReport(_CameraEvent):
    kind: Literal["status"]
    status: CameraStatus


CameraEvent = Annotated[Passage | Violation | StatusReport, Field(discriminator="kind")]
CAMERA_EVENT: TypeAdapter[CameraEvent] = TypeAdapter(CameraEvent)
