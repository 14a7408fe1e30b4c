"""Terminal tallies: seeded, valid per the contract, and calibrated to the article."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from itertools import pairwise
from random import Random

import orjson
import pytest

from city.profile import CityProfile, load_city_profile
from city.topics import CAMERA_EVENTS
from schemas.decoding import decode
from schemas.fields import to_epoch_ms
from schemas.payments import METHODS, TERMINAL_COUNTS
from simulator.city import city_sources
from simulator.payments import TerminalTallies, poisson
from simulator.sources import merged_events, source_rng
from simulator.traffic import CameraTraffic

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


MONDAY = at("2024-09-16T00:00:00+07:00")

Tally = dict[str, object]


@pytest.fixture(scope="module")
def city() -> CityProfile:
    return load_city_profile()


@pytest.fixture(scope="module")
def monday(city: CityProfile) -> list[Tally]:
    """Every tally of a Monday from 06:00 to 22:00."""
    source = TerminalTallies(city, Random(72))
    start = MONDAY + 6 * HOUR_MS
    return [e.value for e in source.events(start, start + 16 * HOUR_MS, 1.0)]


def count(tally: Tally, method: str) -> int:
    counts = tally["counts"]
    assert isinstance(counts, dict)
    return int(counts.get(method, 0))


def cashless_share(tallies: list[Tally], category: str) -> float:
    counts = Counter({m: 0 for m in METHODS})
    for tally in tallies:
        if tally["category"] == category:
            counts.update({m: count(tally, m) for m in METHODS})
    return 1 - counts["cash"] / sum(counts.values())


def test_every_tally_is_valid_per_the_contract(monday: list[Tally]) -> None:
    for value in monday[::20]:
        tally = decode(TERMINAL_COUNTS, orjson.dumps(value))
        assert tally.period_end - tally.period_start <= HOUR_MS


def test_every_terminal_of_the_profile_reports_every_5_to_15_minutes(
    city: CityProfile, monday: list[Tally]
) -> None:
    owners = city.terminals()
    periods: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    for tally in monday:
        owner = owners[str(tally["terminal_id"])]
        assert (tally["merchant_id"], tally["ward"], tally["category"]) == tuple(owner)
        periods[str(tally["terminal_id"])].append(
            (to_epoch_ms(tally["period_start"]), to_epoch_ms(tally["period_end"]))
        )
    assert set(periods) == set(owners)
    for reports in periods.values():
        for before, after in pairwise(reports):
            assert after[0] == before[1]  # nothing left uncounted in between
            assert 5 * MINUTE_MS <= after[1] - after[0] <= 15 * MINUTE_MS


def test_tallies_come_in_time_order_with_unique_ids_and_every_time_encoding(
    city: CityProfile,
) -> None:
    source = TerminalTallies(city, Random(3))
    events = list(source.events(MONDAY + 10 * HOUR_MS, MONDAY + 11 * HOUR_MS, 1.0))
    assert [e.ts_ms for e in events] == sorted(e.ts_ms for e in events)
    assert all(MONDAY + 10 * HOUR_MS <= e.ts_ms < MONDAY + 11 * HOUR_MS for e in events)
    assert len({e.value["event_id"] for e in events}) == len(events)
    kinds = Counter(
        "ms" if isinstance(v, int) else "Z" if str(v).endswith("Z") else "+07"
        for e in events
        for v in (e.value["period_start"], e.value["period_end"])
    )
    assert set(kinds) == {"ms", "Z", "+07"} and kinds["+07"] > kinds["ms"] + kinds["Z"]
    again = list(
        TerminalTallies(city, Random(3)).events(MONDAY + 10 * HOUR_MS, MONDAY + 11 * HOUR_MS, 1.0)
    )
    assert again == events


def test_every_one_of_the_1200_shops_takes_vietqr(city: CityProfile, monday: list[Tally]) -> None:
    shops = {m.merchant_id for m in city.merchants}
    assert len(shops) == 1200
    assert {t["merchant_id"] for t in monday if count(t, "vietqr") > 0} >= shops


def test_utility_bills_are_paid_cashless_as_the_article_reports(monday: list[Tally]) -> None:
    assert cashless_share(monday, "utility_electricity") >= 0.99  # 100%
    assert 0.82 <= cashless_share(monday, "utility_water") <= 0.88  # 85%
    assert 0.79 <= cashless_share(monday, "utility_telecom") <= 0.86  # > 80%
    # Shops: cash is still common, most of all in markets.
    assert cashless_share(monday, "market") < cashless_share(monday, "grocery") < 0.6


def test_amounts_follow_counts_and_a_few_terminals_report_none(monday: list[Tally]) -> None:
    with_amounts = [t for t in monday if "amounts_vnd" in t]
    assert 0.8 < len(with_amounts) / len(monday) < 0.97
    for tally in with_amounts:
        amounts = tally["amounts_vnd"]
        assert isinstance(amounts, dict)
        assert set(amounts) == {m for m in METHODS if count(tally, m)}
        assert all(isinstance(v, int) and v > 0 and v % 1000 == 0 for v in amounts.values())


def test_shops_are_busy_in_the_evening_and_closed_at_night(city: CityProfile) -> None:
    source = TerminalTallies(city, Random(1))
    assert source.rate_per_hour("grocery", at("2024-09-16T03:00:00+07:00")) == 0
    assert source.rate_per_hour("grocery", at("2024-09-16T18:00:00+07:00")) > 12
    assert source.rate_per_hour("market", at("2024-09-16T06:30:00+07:00")) > (
        3 * source.rate_per_hour("market", at("2024-09-16T13:00:00+07:00"))
    )
    holiday = TerminalTallies(city, Random(1), holiday=True)
    noon = at("2024-09-16T12:00:00+07:00")
    assert holiday.rate_per_hour("restaurant", noon) > 1.5 * source.rate_per_hour(
        "restaurant", noon
    )


def test_load_is_fixed_one_tally_per_terminal_every_ten_minutes(city: CityProfile) -> None:
    load = TerminalTallies(city, Random(0)).natural_load(MONDAY, MONDAY + HOUR_MS)
    assert load.scaled == 0
    assert load.fixed == pytest.approx(len(city.terminals()) / 600)


def test_poisson_draws_have_the_asked_mean() -> None:
    rng = Random(5)
    for mean in (0.3, 4.0, 80.0):
        draws = [poisson(rng, mean) for _ in range(20_000)]
        assert sum(draws) / len(draws) == pytest.approx(mean, rel=0.03)


def test_adding_payments_and_portal_leaves_a_seeds_camera_events_unchanged(
    city: CityProfile,
) -> None:
    start = at("2024-09-16T10:00:00+07:00")
    alone = CameraTraffic(city, source_rng(72, CAMERA_EVENTS))
    expected = list(alone.events(start, start + 300_000, 0.01))
    merged = list(merged_events(city_sources(city, 72), start, start + 300_000, 0.01))
    assert [e for e in merged if e.topic == CAMERA_EVENTS] == expected
    assert {e.topic for e in merged} == {
        CAMERA_EVENTS,
        "payments.terminal-counts",
        "portal.transactions",
    }
