"""Dossier steps: seeded, valid per the contract, shaped by office hours, calibrated to the
article."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from random import Random
from zoneinfo import ZoneInfo

import orjson
import pytest

from city.profile import CityProfile, load_city_profile
from schemas.decoding import decode
from schemas.portal import PORTAL_TRANSACTION, PortalTransaction
from simulator.office import add_working_days, deadline, is_open, next_open
from simulator.portal import DossierSteps

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HOUR_MS = 3_600_000


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, TZ)


MONDAY = at("2024-09-16T00:00:00+07:00")


@pytest.fixture(scope="module")
def city() -> CityProfile:
    return load_city_profile()


@pytest.fixture(scope="module")
def three_weeks(city: CityProfile) -> list[PortalTransaction]:
    """Three weeks of steps, produced an hour at a time as the producer asks for them."""
    source = DossierSteps(city, Random(72))
    events = []
    for hour in range(21 * 24):
        start = MONDAY + hour * HOUR_MS
        for event in source.events(start, start + HOUR_MS, 1.0):
            assert start <= event.ts_ms < start + HOUR_MS
            step = decode(PORTAL_TRANSACTION, orjson.dumps(event.value))
            assert step.ts == event.ts_ms and event.key == step.dossier_id
            events.append(step)
    return events


def submissions(events: list[PortalTransaction]) -> list[PortalTransaction]:
    return [e for e in events if e.status == "submitted"]


def test_steps_come_in_time_order_and_each_dossier_in_its_life_order(
    city: CityProfile, three_weeks: list[PortalTransaction]
) -> None:
    assert [e.ts for e in three_weeks] == sorted(e.ts for e in three_weeks)
    assert len({e.event_id for e in three_weeks}) == len(three_weeks)
    lives: defaultdict[str, list[PortalTransaction]] = defaultdict(list)
    for event in three_weeks:
        lives[event.dossier_id].append(event)
    ward_agencies = {a.agency for a in city.agencies if a.level == "ward"}
    for steps in lives.values():
        assert steps[0].status == "submitted"
        assert len({(s.agency, s.procedure_code) for s in steps}) == 1
        procedure = city.procedure(steps[0].procedure_code)
        assert procedure is not None
        assert steps[0].agency == procedure.agency or (
            procedure.agency is None and steps[0].agency in ward_agencies
        )
        if len(steps) > 1:
            assert steps[1].status == "accepted" and steps[1].due_at is not None
    weekdays = sum(1 for e in submissions(three_weeks) if local(e.ts).weekday() < 5)
    assert 450 < weekdays / 15 < 600  # about 530 dossiers a weekday, city and wards


def test_about_97_6_percent_are_submitted_online_and_none_on_paper_on_fridays(
    three_weeks: list[PortalTransaction],
) -> None:
    submitted = submissions(three_weeks)
    channels = Counter(e.channel for e in submitted)
    assert 0.970 <= channels["online"] / len(submitted) <= 0.982  # 97.63%
    assert channels["counter"] > 5 * channels["postal"] > 0
    for event in submitted:
        if event.channel != "online":
            when = local(event.ts)
            assert when.weekday() not in (4, 6) and is_open(when)


def test_online_dossiers_use_vneid_level_2_and_some_pay_online(
    three_weeks: list[PortalTransaction],
) -> None:
    online = [e for e in submissions(three_weeks) if e.channel == "online"]
    auth = Counter(e.auth for e in online)
    assert 0.988 <= auth["vneid_l2"] / len(online) <= 0.995  # 99.17%
    assert 0.3 < sum(1 for e in online if e.paid_online) / len(online) < 0.5
    full = sum(1 for e in online if e.service_level == "full")
    assert 0.7 < full / len(online) < 0.85


def test_resolutions_are_on_time_and_signed_as_the_article_reports(
    three_weeks: list[PortalTransaction],
) -> None:
    deadlines: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    on_time = judged = signed = resolved = 0
    for event in three_weeks:
        if event.due_at is not None:
            deadlines[event.dossier_id].append((event.ts, event.due_at))
        if event.status != "resolved":
            continue
        resolved += 1
        signed += bool(event.signed)
        due = event.due_at or max(d for d in deadlines[event.dossier_id] if d[0] <= event.ts)[1]
        judged += 1
        on_time += event.ts <= due
        assert is_open(local(event.ts))
    assert resolved > 5_000
    assert 0.997 <= on_time / judged < 1.0  # 99.85% in 2024
    assert signed / resolved >= 0.997  # 100%
    repeated = sum(1 for e in three_weeks if e.status == "resolved" and e.due_at is not None)
    assert 0.1 < repeated / resolved < 0.3  # most leave the deadline to earlier steps


def test_office_hours_shape_the_day(three_weeks: list[PortalTransaction]) -> None:
    by_hour = Counter(
        local(e.ts).hour for e in submissions(three_weeks) if local(e.ts).weekday() < 5
    )
    assert by_hour[9] > 2.5 * by_hour[12]  # the lunch dip
    assert by_hour[15] > 4 * by_hour[19] > 0  # evenings: an online trickle
    assert by_hour[9] > 20 * by_hour[3]
    by_day = Counter(local(e.ts).weekday() for e in submissions(three_weeks))
    assert by_day[0] > 3 * by_day[5] > 3 * by_day[6] > 0  # light Saturdays, quiet Sundays


def test_a_holiday_takes_no_paper_dossiers(city: CityProfile) -> None:
    source = DossierSteps(city, Random(4), holiday=True)
    start = at("2024-09-17T07:00:00+07:00")
    steps = [e.value for e in source.events(start, start + 10 * HOUR_MS, 1.0)]
    channels = Counter(s["channel"] for s in steps if s["status"] == "submitted")
    assert set(channels) == {"online"} and channels["online"] > 10


def test_deadlines_count_working_days_to_closing_time() -> None:
    friday = at("2024-09-20T16:00:00+07:00")
    assert local(deadline(friday, 1, TZ)).isoformat() == "2024-09-23T17:00:00+07:00"
    assert local(deadline(friday, 5, TZ)).isoformat() == "2024-09-27T17:00:00+07:00"
    assert add_working_days(local(friday).date(), 0) == local(friday).date()
    # After Friday's closing the office next opens on Saturday morning; at lunch, at 13:30.
    assert local(next_open(at("2024-09-20T17:00:00+07:00"), TZ)).isoformat() == (
        "2024-09-21T07:30:00+07:00"
    )
    assert local(next_open(at("2024-09-18T12:00:00+07:00"), TZ)).isoformat() == (
        "2024-09-18T13:30:00+07:00"
    )
    assert next_open(at("2024-09-18T09:00:00+07:00"), TZ) == at("2024-09-18T09:00:00+07:00")


def test_same_seed_same_steps(city: CityProfile) -> None:
    start = at("2024-09-16T08:00:00+07:00")
    first = list(DossierSteps(city, Random(9)).events(start, start + 2 * HOUR_MS, 1.0))
    again = list(DossierSteps(city, Random(9)).events(start, start + 2 * HOUR_MS, 1.0))
    other = list(DossierSteps(city, Random(10)).events(start, start + 2 * HOUR_MS, 1.0))
    assert first == again and first != other and len(first) > 100
