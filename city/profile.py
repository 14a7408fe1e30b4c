"""The city profile (contract section 8): wards, cameras, terminals, agencies, procedures.

A data file, not code (default: the packaged `profiles/vung-tau.json`). Every stream reads it,
so it is checked once, here: a dangling reference, a duplicated id or a missing PCU factor
stops the load with a CityProfileError naming the file and the field.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache, cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from city.exceptions import CityProfileError

VehicleClass = Literal["motorbike", "car", "bus", "truck", "bicycle", "other"]
CameraKind = Literal["high_ptz", "low_ptz", "security", "urban_management", "traffic_counting"]
MerchantCategory = Literal["grocery", "market", "restaurant", "retail", "fuel", "other"]
UtilityCategory = Literal["utility_electricity", "utility_water", "utility_telecom"]
PaymentCategory = Literal[MerchantCategory, UtilityCategory]
AdminLevel = Literal["ward", "city"]
ServiceLevel = Literal["full", "partial"]

Code = Annotated[str, Field(min_length=1, max_length=64)]
ProcedureCode = Annotated[str, Field(min_length=1, max_length=32)]

DEFAULT_PROFILE = "profiles/vung-tau.json"
EARTH_RADIUS_KM = 6371.0088
_MAX_REPORTED_PROBLEMS = 20
# An IANA zone name: it goes into SQL as a literal (sinks/clickhouse/placeholders.py).
ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Point(_Record):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    def distance_km(self, other: Point) -> float:
        """Great-circle (haversine) distance."""
        phi1, phi2 = math.radians(self.lat), math.radians(other.lat)
        dphi, dlmb = phi2 - phi1, math.radians(other.lon - self.lon)
        h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class Unit2025(_Record):
    """An administrative unit after the 1 July 2025 reorganisation."""

    code: Code
    name: str


class Ward(_Record):
    """A ward or commune before July 2025; the circle approximates it for placing things."""

    code: Code
    name: str
    unit_2025: Code
    area_km2: float = Field(gt=0)
    center: Point
    radius_km: float = Field(gt=0)

    def contains(self, lat: float, lon: float) -> bool:
        return self.center.distance_km(Point(lat=lat, lon=lon)) <= self.radius_km


class Camera(_Record):
    camera_id: Code
    kind: CameraKind
    ward: Code
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    road: str
    lanes: int = Field(ge=1, le=16)
    arterial: bool
    beach_road: bool


class _Payee(_Record):
    merchant_id: Code
    name: str
    ward: Code
    category: PaymentCategory
    terminals: tuple[Code, ...] = Field(min_length=1)


class Merchant(_Payee):
    """A shop with a QR payment code; its terminals report payments.terminal-counts."""

    category: MerchantCategory


class Biller(_Payee):
    """A utility that collects bills; its collection terminals report like a shop's."""

    category: UtilityCategory


class Agency(_Record):
    """An agency of portal.transactions: a ward's people's committee or a city department."""

    agency: Code
    name: str
    level: AdminLevel
    ward: Code | None = Field(default=None, description="set exactly when level is 'ward'")


class Procedure(_Record):
    procedure_code: ProcedureCode
    name: str
    level: AdminLevel
    legal_days: int = Field(ge=1, le=90, description="legal deadline in working days")
    service_level: ServiceLevel
    # The city department that handles a city-level procedure; None: each ward's committee.
    agency: Code | None = None


class TerminalOwner(NamedTuple):
    merchant_id: str
    ward: str
    category: PaymentCategory


class CityProfile(_Record):
    name: str
    # The one source of city time: stream days and hours, the store's DateTime columns, the
    # dashboards' zone and day boundaries, and times typed without an offset.
    timezone: str
    description: str = ""
    pcu: dict[VehicleClass, Annotated[float, Field(gt=0)]]
    units_2025: tuple[Unit2025, ...] = Field(min_length=1)
    wards: tuple[Ward, ...] = Field(min_length=1)
    cameras: tuple[Camera, ...] = ()
    merchants: tuple[Merchant, ...] = ()
    billers: tuple[Biller, ...] = ()
    agencies: tuple[Agency, ...] = ()
    procedures: tuple[Procedure, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # The name goes into ClickHouse column types and dashboard SQL as a literal.
        if not ZONE_NAME.fullmatch(value):
            raise ValueError(f"not an IANA time zone name {value!r}")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("pcu")
    @classmethod
    def _pcu_covers_every_class(cls, value: dict[VehicleClass, float]) -> dict[VehicleClass, float]:
        missing = [v for v in get_args(VehicleClass) if v not in value]
        if missing:
            raise ValueError(f"no PCU factor for vehicle class {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> CityProfile:
        problems = list(_reference_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        # A plain copy would skip validation and keep the cached lookups below: revalidate.
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return self.model_validate({**fields, **(update or {})})

    @property
    def payees(self) -> tuple[Merchant | Biller, ...]:
        """Shops and utility billers: everyone who owns payment terminals."""
        return (*self.merchants, *self.billers)

    # The lookups below are built on first use and kept: streams consult them once per event.
    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def ward_codes(self) -> frozenset[str]:
        return frozenset(w.code for w in self.wards)

    @cached_property
    def ward_of_camera(self) -> Mapping[str, str]:
        """camera_id → ward code (read-only)."""
        return MappingProxyType({c.camera_id: c.ward for c in self.cameras})

    @cached_property
    def unit_of_ward(self) -> Mapping[str, str]:
        """Ward code → code of its post-July-2025 unit, to show old data by new units."""
        return MappingProxyType({w.code: w.unit_2025 for w in self.wards})

    @cached_property
    def _terminals(self) -> Mapping[str, TerminalOwner]:
        owners = {
            t: TerminalOwner(p.merchant_id, p.ward, p.category)
            for p in self.payees
            for t in p.terminals
        }
        return MappingProxyType(owners)

    @cached_property
    def _cameras(self) -> dict[str, Camera]:
        return {c.camera_id: c for c in self.cameras}

    @cached_property
    def _procedures(self) -> dict[str, Procedure]:
        return {p.procedure_code: p for p in self.procedures}

    def camera(self, camera_id: str) -> Camera | None:
        return self._cameras.get(camera_id)

    def procedure(self, procedure_code: str) -> Procedure | None:
        return self._procedures.get(procedure_code)

    def terminals(self) -> Mapping[str, TerminalOwner]:
        """terminal_id → (merchant_id, ward, category), over shops and billers (read-only)."""
        return self._terminals


def _reference_problems(city: CityProfile) -> Iterator[str]:
    """Each problem names its field path, the bad value and the record it sits in."""
    payees = city.payees
    unique: tuple[tuple[str, Iterable[str]], ...] = (
        ("units_2025.code", (u.code for u in city.units_2025)),
        ("wards.code", (w.code for w in city.wards)),
        ("cameras.camera_id", (c.camera_id for c in city.cameras)),
        ("merchants+billers.merchant_id", (p.merchant_id for p in payees)),
        ("merchants+billers.terminals", (t for p in payees for t in p.terminals)),
        ("agencies.agency", (a.agency for a in city.agencies)),
        ("procedures.procedure_code", (p.procedure_code for p in city.procedures)),
    )
    for field, values in unique:
        yield from (f"{field}: duplicate {v!r}" for v, n in Counter(values).items() if n > 1)
    units = {u.code for u in city.units_2025}
    wards, agencies = set(city.ward_codes), {a.agency for a in city.agencies}
    references: tuple[tuple[str, Sequence[BaseModel], str, str, set[str]], ...] = (
        ("wards", city.wards, "code", "unit_2025", units),
        ("cameras", city.cameras, "camera_id", "ward", wards),
        ("merchants", city.merchants, "merchant_id", "ward", wards),
        ("billers", city.billers, "merchant_id", "ward", wards),
        ("agencies", city.agencies, "agency", "ward", wards),
        ("procedures", city.procedures, "procedure_code", "agency", agencies),
    )
    for i, a in enumerate(city.agencies):
        if (a.level == "ward") != (a.ward is not None):
            yield f"agencies.{i}.ward: must be set exactly when level is 'ward' ({a.agency})"
    for field, rows, id_attr, ref_attr, known in references:
        for i, row in enumerate(rows):
            ref, row_id = getattr(row, ref_attr), getattr(row, id_attr)
            if ref is not None and ref not in known:
                yield f"{field}.{i}.{ref_attr}: unknown {ref_attr} {ref!r} ({row_id})"


def load_city_profile(path: Path | None = None) -> CityProfile:
    """The profile at `path`, or the packaged Vũng Tàu default (loaded once) when None.

    Raises CityProfileError, naming the file and each bad field, when the file cannot be read
    or does not describe a valid city.
    """
    return _default_profile() if path is None else _load(path, str(path))


@cache
def _default_profile() -> CityProfile:
    resource = resources.files("city").joinpath(DEFAULT_PROFILE)
    return _load(resource, f"city/{DEFAULT_PROFILE} (packaged default)")


def _load(source: Path | Traversable, label: str) -> CityProfile:
    try:
        return CityProfile.model_validate_json(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CityProfileError(f"cannot read city profile {label}: {exc}") from exc
    except ValidationError as exc:
        raise CityProfileError(_describe(exc, label)) from exc


def _describe(exc: ValidationError, source: str) -> str:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        # A ValueError raised by a validator: its own text, without pydantic's "Value error, ".
        cause = (error.get("ctx") or {}).get("error")
        msg = str(cause) if error["type"] == "value_error" and cause else error["msg"]
        for line in msg.splitlines():
            lines.append(f"  {loc}: {line}" if loc else f"  {line}")
    shown = lines[:_MAX_REPORTED_PROBLEMS]
    if len(lines) > len(shown):
        shown.append(f"  ... and {len(lines) - len(shown)} more")
    return f"invalid city profile {source}:\n" + "\n".join(shown)
