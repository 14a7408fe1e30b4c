"""Vietnamese licence plates of province 72 (Bà Rịa–Vũng Tàu), as the cameras read them.

Cars `72A-123.45`, motorbikes `72-B1 123.45`; series letters exclude I, O, Q, W. The series
letter of a car plate follows its use: A private cars, B passenger vehicles, C trucks, D vans.
"""

from __future__ import annotations

from random import Random

from schemas.camera import VehicleClass

PROVINCE = "72"
SERIES_LETTERS = "ABCDEFGHJKLMNPRSTUVXYZ"
CAR_SERIES: dict[VehicleClass, str] = {
    "car": "AAAAAAAAFGHK",
    "bus": "B",
    "truck": "C",
    "other": "D",
}


def _serial(rng: Random) -> str:
    number = int(rng.random() * 100_000)
    return f"{number // 100:03d}.{number % 100:02d}"


def car_plate(rng: Random, vehicle_class: VehicleClass = "car") -> str:
    series = CAR_SERIES.get(vehicle_class, "A")
    return f"{PROVINCE}{series[int(rng.random() * len(series))]}-{_serial(rng)}"


def motorbike_plate(rng: Random) -> str:
    letter = SERIES_LETTERS[int(rng.random() * len(SERIES_LETTERS))]
    return f"{PROVINCE}-{letter}{1 + int(rng.random() * 9)} {_serial(rng)}"


def plate_for(vehicle_class: VehicleClass, rng: Random) -> str | None:
    """A plausible plate for the class; bicycles carry none."""
    if vehicle_class == "bicycle":
        return None
    if vehicle_class == "motorbike":
        return motorbike_plate(rng)
    return car_plate(rng, vehicle_class)
