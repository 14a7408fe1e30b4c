"""A small city for the anomaly tests: six cameras that send, every minute, a heartbeat and
about `vehicles` passages at `speed` km/h (every `violations_every`-th also a violation), and
incidents that change what some of them send."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from city.calendar import DAY_TYPES
from city.profile import load_city_profile
from streams.traffic.anomaly.baselines import SLOTS_PER_DAY, Baselines, SlotBaseline

MINUTE = 60_000
T0 = 1_726_531_200_000  # 2024-09-17T07:00:00+07:00, a Tuesday
CAMERAS = [camera.camera_id for camera in load_city_profile().cameras[:6]]
USUAL = SlotBaseline(
    vehicles=20.0,
    vehicles_mad=3.0,
    speed_kmh=40.0,
    speed_mad=1.5,
    violation_rate=0.02,
    class_share={"motorbike": 0.85, "car": 0.1, "bus": 0.01, "truck": 0.02, "bicycle": 0.01,
                 "other": 0.01},
    learned=True,
)  # fmt: skip


def baselines(usual: SlotBaseline = USUAL) -> Baselines:
    slots = itertools.product(CAMERAS, DAY_TYPES, range(SLOTS_PER_DAY))
    return Baselines({slot: usual for slot in slots}, version=7)


@dataclass
class Minute:
    """What one camera sends in one minute."""

    vehicles: int = 20
    speed: float = 40.0
    heartbeat: str | None = "online"
    violations_every: int = 50
    vehicle_class: str | None = None  # None: the usual mix


Plan = Callable[[str, int], Minute]  # (camera, minute index) -> what it sends
Rate = Callable[[str, int], float]  # (camera, minute index) -> vehicles a minute; 0: dark


def usual(_camera: str, _minute: int) -> Minute:
    return Minute()


def events(plan: Plan, first_minute: int, minutes: int) -> Iterator[dict[str, Any]]:
    for index in range(first_minute, first_minute + minutes):
        rng = random.Random(index)  # a minute is the same whichever run sends it
        start = T0 + index * MINUTE
        batch: list[dict[str, Any]] = []
        for camera in CAMERAS:
            minute = plan(camera, index)
            if minute.heartbeat is not None:
                batch.append(camera_event(camera, start + 7_000, "status", status=minute.heartbeat))
            # Counts vary as real ones do: a camera repeating its count is stuck.
            vehicles = max(0, minute.vehicles + rng.randint(-3, 3)) if minute.vehicles else 0
            for n in range(vehicles):
                ts = start + (n * 60_000) // vehicles + rng.randrange(500)
                vehicle_class = minute.vehicle_class or ("car" if n % 10 == 0 else "motorbike")
                speed = round(minute.speed * rng.uniform(0.9, 1.1), 1)
                if minute.vehicle_class is not None:
                    speed = minute.speed
                batch.append(camera_event(camera, ts, "passage", vehicle_class=vehicle_class,
                                    speed_kmh=speed))  # fmt: skip
                if n % minute.violations_every == minute.violations_every - 1:
                    batch.append(camera_event(camera, ts, "violation", vehicle_class=vehicle_class,
                                        violation_type="red_light"))  # fmt: skip
        batch.sort(key=lambda e: e["ts"])
        yield from batch


_ids = itertools.count()


def camera_event(camera: str, ts: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e{next(_ids)}", "camera_id": camera, "ts": ts, "kind": kind, **fields}


def during(cameras: list[str], first: int, last: int, minute: Minute) -> Plan:
    """`minute` for `cameras` in minutes [first, last), the usual otherwise."""

    def plan(camera: str, index: int) -> Minute:
        return minute if camera in cameras and first <= index < last else Minute()

    return plan


def traffic(
    cameras: list[str], rate: Rate, t0: int, minutes: int, slowdown: Rate = lambda _c, _i: 1.0
) -> Iterator[dict[str, Any]]:
    """Plain traffic: a heartbeat and Poisson-like passages at steady speeds each minute (times
    `slowdown`)."""
    for index in range(minutes):
        rng = random.Random(index)
        start = t0 + index * MINUTE
        batch: list[dict[str, Any]] = []
        for camera in cameras:
            mean = rate(camera, index)
            if mean == 0:
                continue  # dark: no heartbeat either
            batch.append(camera_event(camera, start + 7_000, "status", status="online"))
            vehicles = max(0, round(rng.gauss(mean, mean**0.5)))
            factor = slowdown(camera, index)
            for n in range(vehicles):
                ts = start + (n * 60_000) // vehicles + rng.randrange(500)
                kind = "car" if n % 5 == 0 else "motorbike"
                speed = round(rng.uniform(32.0, 44.0) * factor, 1)
                batch.append(camera_event(camera, ts, "passage", vehicle_class=kind,
                                          speed_kmh=speed))  # fmt: skip
        batch.sort(key=lambda e: e["ts"])
        yield from batch
