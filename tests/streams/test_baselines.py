"""The detector finds a minute's baseline by the slot of that minute in the city's own zone."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import ConsumerRecord

from city.profile import load_city_profile
from schemas.camera import VEHICLE_CLASSES
from streams.engine.checkpoint import Cut, Step
from streams.engine.exceptions import WorkerFault
from streams.engine.offline import NothingSaved, discarding_sinks
from streams.engine.window_stage import WindowStage
from streams.traffic.anomaly.baselines import (
    ALWAYS,
    COLUMNS,
    Baselines,
    BaselineVersion,
    SlotBaseline,
    baselines_from_rows,
)
from streams.traffic.anomaly.timeline import BaselineTimeline, StoredVersions
from streams.traffic.flow import TrafficFlow
from tests.anomaly_city import CAMERAS, MINUTE, T0, camera_event

LISBON = ZoneInfo("Europe/Lisbon")
VUNG_TAU = ZoneInfo("Asia/Ho_Chi_Minh")
# Friday 20:05 in Lisbon: a weekday's slot 80 there.
FRIDAY_EVENING_MS = int(datetime(2024, 9, 20, 20, 5, tzinfo=LISBON).timestamp() * 1000)
EVENING = SlotBaseline(12.0, 2.0, 30.0, 3.0, 0.01, {"car": 1.0})


def _never_read(version: int) -> Baselines:
    raise AssertionError(f"version {version} read back from the store")


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


def test_questions_asked_while_the_versions_are_on_their_way_wait_for_them() -> None:
    """A fresh worker folds its first events while its priors are computed and written (issue
    20, P7): a minute judged meanwhile waits for them, never judged without baselines, and the
    priors the worker wrote are not read back."""
    priors = Baselines({("VT-CAM-001", "weekday", 80): EVENING}, version=1)
    written = threading.Event()

    def prepare() -> StoredVersions:
        written.wait()
        return StoredVersions([BaselineVersion(0, 1)], written=priors)

    with ThreadPoolExecutor(max_workers=1) as preparing, ThreadPoolExecutor(1) as store:
        timeline = BaselineTimeline(preparing.submit(prepare), _never_read, store)
        threading.Timer(0.05, written.set).start()
        assert timeline.at("VT-CAM-001", FRIDAY_EVENING_MS, LISBON) is EVENING
        assert timeline.version_at(FRIDAY_EVENING_MS) == 1


def test_a_preparation_that_failed_is_raised_to_every_question() -> None:
    def prepare() -> StoredVersions:
        raise ConnectionError("the store went away while the priors were written")

    with ThreadPoolExecutor(max_workers=1) as preparing, ThreadPoolExecutor(1) as store:
        timeline = BaselineTimeline(preparing.submit(prepare), _never_read, store)
        for _ in range(2):  # not answered without baselines the second time either
            with pytest.raises(WorkerFault, match="priors"):
                timeline.at("VT-CAM-001", FRIDAY_EVENING_MS, LISBON)
        with pytest.raises(WorkerFault, match="priors"):
            timeline.version_at(FRIDAY_EVENING_MS)


def test_a_failed_preparation_stops_the_fold_and_dead_letters_no_event() -> None:
    """The fault is the worker's, not the event's: the minute the watch cannot judge must
    stop the worker (the engine exits 1 and resumes from its last saved state), where a
    dead letter would drop the event from its window, its id already taken, and commit."""
    failed: Future[StoredVersions] = Future()
    failed.set_exception(ConnectionError("the store went away while the priors were written"))
    with ThreadPoolExecutor(max_workers=1) as store:
        flow = TrafficFlow(load_city_profile(), 120, BaselineTimeline(failed, _never_read, store))
        stage: WindowStage[Any, Any] = WindowStage(
            flow, "camera.events", discarding_sinks(), NothingSaved(), {},
            max_clock_skew_s=3600, highwater=lambda _t, _p: None,
        )  # fmt: skip
        asyncio.run(stage.assign(0))
        # Six minutes of a camera's cars: its first minutes settle, and the watch judges them.
        cars = [
            camera_event(CAMERAS[0], T0 + n * MINUTE // 4, "passage", vehicle_class="car")
            for n in range(24)
        ]
        records = [
            ConsumerRecord("camera.events", 0, n, 0, 0, CAMERAS[0].encode(), orjson.dumps(car),
                           None, 0, 0, ())
            for n, car in enumerate(cars)
        ]  # fmt: skip
        with pytest.raises(WorkerFault, match="baselines"):
            stage.fold(0, records)
        cut = Cut()
        stage.cut(cut, 0.0)
    assert [rows for (step, _), rows in cut.writes.items() if step is Step.DEAD_LETTERS] == []
    assert stage.partition_state(0).counters.invalid == 0
