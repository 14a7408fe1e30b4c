"""Camera traffic: seeded, valid per the contract, and shaped like the city's day."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from random import Random

import orjson
import pytest

from city.profile import CityProfile, load_city_profile
from schemas.camera import CAMERA_EVENT
from schemas.decoding import decode
from simulator.sources import rate_scale_for
from simulator.traffic import CameraTraffic, camera_events

CAR_PLATE = re.compile(r"^72[A-HJ-NPR-VX-Z]-\d{3}\.\d{2}$")
MOTORBIKE_PLATE = re.compile(r"^72-[A-HJ-NPR-VX-Z][1-9] \d{3}\.\d{2}$")
HOUR_MS = 3_600_000
DAY_SCALE = 0.01  # a hundredth of the traffic (heartbeats in full) keeps a day quick

Event = dict[str, object]


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


MONDAY = at("2024-09-16T00:00:00+07:00")
SATURDAY = at("2024-09-14T00:00:00+07:00")


@pytest.fixture(scope="module")
def city() -> CityProfile:
    return load_city_profile()


@pytest.fixture(scope="module")
def weekday(city: CityProfile) -> list[Event]:
    return list(camera_events(city, MONDAY, MONDAY + 24 * HOUR_MS, Random(72), DAY_SCALE))


def passages(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "passage"]


def ts_ms(event: Event) -> int:
    ts = event["ts"]
    return ts if isinstance(ts, int) else at(str(ts))


def test_same_seed_gives_identical_events_and_another_seed_does_not(city: CityProfile) -> None:
    start = at("2024-09-16T07:30:00+07:00")
    first = list(camera_events(city, start, start + 120_000, Random(72)))
    again = list(camera_events(city, start, start + 120_000, Random(72)))
    other = list(camera_events(city, start, start + 120_000, Random(73)))
    assert len(first) > 20_000
    assert first == again
    assert first != other


def test_every_event_validates_against_the_contract(city: CityProfile) -> None:
    windows = [
        (at("2024-09-16T07:30:00+07:00"), False),  # weekday peak
        (at("2024-09-14T15:00:00+07:00"), True),  # holiday afternoon on the beach roads
        (at("2024-09-16T02:00:00+07:00"), False),  # night: trucks, few vehicles
    ]
    checked: Counter[str] = Counter()
    encodings: Counter[type] = Counter()
    for start, holiday in windows:
        events = camera_events(city, start, start + 300_000, Random(1), 0.5, holiday=holiday)
        for event in events:
            decoded = decode(CAMERA_EVENT, orjson.dumps(event), tagged=True)
            assert start <= decoded.ts < start + 300_000
            assert city.camera(decoded.camera_id) is not None
            checked[decoded.kind] += 1
            encodings[type(event["ts"])] += 1
    assert set(checked) == {"passage", "violation", "status"}
    # Both encodings of contract time occur, RFC 3339 mostly.
    assert 0.05 < encodings[int] / (encodings[int] + encodings[str]) < 0.2


def test_events_come_in_time_order_with_unique_ids(weekday: list[Event]) -> None:
    times = [ts_ms(e) for e in weekday[:50_000]]
    assert times == sorted(times)
    assert len({e["event_id"] for e in weekday}) == len(weekday)


def test_lanes_stay_within_the_cameras_lanes(city: CityProfile, weekday: list[Event]) -> None:
    for event in passages(weekday):
        if "lane" in event:
            camera = city.camera(str(event["camera_id"]))
            assert camera is not None
            assert 1 <= int(str(event["lane"])) <= camera.lanes


def test_motorbikes_are_about_85_percent_of_a_weekday(weekday: list[Event]) -> None:
    classes = Counter(e["vehicle_class"] for e in passages(weekday))
    share = classes["motorbike"] / sum(classes.values())
    assert 0.80 <= share <= 0.90
    assert classes["car"] > classes["bus"] + classes["truck"] + classes["bicycle"]


def test_morning_peak_is_far_busier_than_3_am(weekday: list[Event]) -> None:
    by_hour = Counter((ts_ms(e) - MONDAY) // HOUR_MS for e in passages(weekday))
    assert by_hour[7] > 10 * by_hour[3]
    assert by_hour[17] > 1.5 * by_hour[13]  # the late-afternoon peak


def test_beach_roads_are_busier_at_weekend_midday(city: CityProfile) -> None:
    beach = {c.camera_id for c in city.cameras if c.beach_road}

    def beach_passages(day_start: int, holiday: bool = False) -> int:
        start = day_start + 11 * HOUR_MS
        events = camera_events(city, start, start + 3 * HOUR_MS, Random(5), 0.02, holiday=holiday)
        return sum(1 for e in events if e["kind"] == "passage" and e["camera_id"] in beach)

    weekday, weekend = beach_passages(MONDAY), beach_passages(SATURDAY)
    assert weekend > 1.4 * weekday
    assert beach_passages(SATURDAY, holiday=True) > 1.3 * weekend


def test_plates_are_province_72_in_the_class_format(weekday: list[Event]) -> None:
    plated = [e for e in weekday if "plate" in e]
    assert plated
    for event in plated:
        plate = str(event["plate"])
        if event["vehicle_class"] == "motorbike":
            assert MOTORBIKE_PLATE.match(plate), plate
        else:
            assert event["vehicle_class"] != "bicycle"
            assert CAR_PLATE.match(plate), plate
    share = len([e for e in passages(weekday) if "plate" in e]) / len(passages(weekday))
    assert 0.2 < share < 0.8  # sometimes present, not always


def test_violations_are_rare_plated_and_realistically_typed(
    city: CityProfile, weekday: list[Event]
) -> None:
    violations = [e for e in weekday if e["kind"] == "violation"]
    assert 0.005 <= len(violations) / len(passages(weekday)) <= 0.03
    types = Counter(e["violation_type"] for e in violations)
    common = {t for t, _ in types.most_common(3)}
    assert common == {"no_helmet", "red_light", "wrong_lane"}
    assert all(
        e["vehicle_class"] == "motorbike" for e in violations if e["violation_type"] == "no_helmet"
    )
    speeding = [e for e in violations if e["violation_type"] == "speeding"]
    assert speeding and all(float(str(e["speed_kmh"])) > 50 for e in speeding)
    assert sum(1 for e in violations if "plate" in e) > 0.9 * len(violations)


def test_every_camera_reports_status_once_a_minute_mostly_online(city: CityProfile) -> None:
    start = at("2024-09-16T10:00:00+07:00")
    events = camera_events(city, start, start + 10 * 60_000, Random(9), 0.0)
    statuses = [e for e in events if e["kind"] == "status"]
    per_camera = Counter(e["camera_id"] for e in statuses)
    assert set(per_camera) == {c.camera_id for c in city.cameras}
    assert set(per_camera.values()) == {10}
    online = sum(1 for e in statuses if e["status"] == "online")
    assert online > 0.95 * len(statuses)


def test_rate_scale_reaches_the_target_rate(city: CityProfile) -> None:
    start = at("2024-09-16T12:00:00+07:00")
    end = start + HOUR_MS // 2
    source = CameraTraffic(city, Random(3))
    scale = rate_scale_for([source], 50.0, start, end)
    sent = sum(1 for _ in source.events(start, end, scale))
    assert sent / ((end - start) / 1000) == pytest.approx(50.0, rel=0.05)
    assert 0 < scale < 1


def test_natural_load_is_about_300_events_per_second_at_peak(city: CityProfile) -> None:
    start = at("2024-09-16T07:30:00+07:00")
    load = CameraTraffic(city, Random(0)).natural_load(start, start + HOUR_MS)
    assert 250 <= load.scaled + load.fixed <= 350
