"""The detector finds a minute's baseline by the slot of that minute in the city's own zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.camera import VEHICLE_CLASSES
from streams.traffic.anomaly.baselines import (
    ALWAYS,
    COLUMNS,
    Baselines,
    SlotBaseline,
    baselines_from_rows,
)

LISBON = ZoneInfo("Europe/Lisbon")
VUNG_TAU = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_minute_is_looked_up_in_the_slot_of_the_citys_clock() -> None:
    evening = SlotBaseline(12.0, 2.0, 30.0, 3.0, 0.01, {"car": 1.0})
    baselines = Baselines({("VT-CAM-001", "weekday", 80): evening}, version=1)
    # Friday 20:05 in Lisbon: a weekday's slot 80 there, Saturday 03:05 in Vũng Tàu.
    ts_ms = int(datetime(2024, 9, 20, 20, 5, tzinfo=LISBON).timestamp() * 1000)
    assert baselines.at("VT-CAM-001", ts_ms, LISBON) is evening
    assert baselines.at("VT-CAM-001", ts_ms, VUNG_TAU) is None


def _row(camera_id: str, slot: int, shares: tuple[float, ...]) -> tuple[object, ...]:
    # In the order of COLUMNS; each string a fresh object, as in every row the driver reads.
    fields = {
        "camera_id": "".join(camera_id),
        "day_type": "".join("weekday"),
        "slot": slot,
        "vehicles_median": 12.0,
        "vehicles_mad": 2.0,
        "speed_median": None,
        "speed_mad": 0.0,
        "violation_rate": 0.01,
        **{f"{c}_share": share for c, share in zip(VEHICLE_CLASSES, shares, strict=True)},
        "samples": 0,
        "source": "prior",
        "version": 3,
        "effective_from": ALWAYS,
    }
    return tuple(fields[column] for column in COLUMNS)


def test_rows_become_slots_that_share_equal_strings_and_class_shares() -> None:
    # A version is ~56,000 slots and a worker holds up to three (issue 20's memory).
    one = tuple(1 / len(VEHICLE_CLASSES) for _ in VEHICLE_CLASSES)
    other = (1.0, *(0.0 for _ in VEHICLE_CLASSES[1:]))
    rows = [_row("VT-CAM-001", 0, one), _row("VT-CAM-001", 1, one), _row("VT-CAM-002", 0, other)]

    baselines = baselines_from_rows(rows)

    (a, day_a, _), (b, day_b, _), (c, _, _) = baselines.slots
    assert a is b and a == "VT-CAM-001" and c == "VT-CAM-002" and day_a is day_b == "weekday"
    first, second, third = baselines.slots.values()
    assert first.class_share is second.class_share
    assert dict(first.class_share) == dict(zip(VEHICLE_CLASSES, one, strict=True))
    assert dict(third.class_share) == dict(zip(VEHICLE_CLASSES, other, strict=True))
    assert baselines.version == 3 and not first.learned and first.speed_kmh is None
    assert (first.vehicles, first.vehicles_mad, first.violation_rate) == (12.0, 2.0, 0.01)
