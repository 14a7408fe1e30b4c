"""Injected incidents: parsed from the command line, applied to one camera's events within their
window, and nothing else in the run changes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path
from random import Random

import orjson
import pytest

from city.profile import CityProfile, load_city_profile
from simulator.city import city_sources
from simulator.exceptions import SimulatorError
from simulator.incidents import (
    INCIDENT_KINDS,
    Incident,
    IncidentKind,
    check_no_overlap,
    parse_incident,
)
from simulator.traffic import camera_events
from tests.pipeline import VTOPS, PipelineRun

Event = dict[str, object]
MINUTE_MS = 60_000
CAMERA = "VT-CAM-002"  # a busy 4-lane arterial that reports speeds
CAMERAS = {CAMERA, "VT-CAM-003"}


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


PEAK = at("2024-09-16T07:30:00+07:00")
INCIDENT_START = PEAK + 2 * MINUTE_MS + 30_000
INCIDENT_END = INCIDENT_START + 6 * MINUTE_MS
RUN_END = PEAK + 10 * MINUTE_MS


@pytest.fixture(scope="module")
def city() -> CityProfile:
    # Three cameras of the city keep each simulated ten minutes quick.
    full = load_city_profile()
    kept = (*CAMERAS, "VT-CAM-001")
    return full.model_copy(
        update={"cameras": tuple(c for c in full.cameras if c.camera_id in kept)}
    )


@pytest.fixture(scope="module")
def control(city: CityProfile) -> list[Event]:
    return list(camera_events(city, PEAK, RUN_END, Random(72)))


def with_incident(city: CityProfile, kind: IncidentKind, size: float = 1.0) -> list[Event]:
    incident = Incident(kind, CAMERA, INCIDENT_START, INCIDENT_END, size)
    return list(camera_events(city, PEAK, RUN_END, Random(72), incidents=[incident]))


def ts_ms(event: Event) -> int:
    ts = event["ts"]
    return ts if isinstance(ts, int) else at(str(ts))


def inside(events: list[Event], kind: str | None = None) -> list[Event]:
    """The incident camera's events within the incident (of one kind, if given)."""
    return [
        e
        for e in events
        if e["camera_id"] == CAMERA
        and INCIDENT_START <= ts_ms(e) < INCIDENT_END
        and (kind is None or e["kind"] == kind)
    ]


def outside(events: list[Event]) -> list[Event]:
    return [
        e
        for e in events
        if e["camera_id"] != CAMERA or not INCIDENT_START <= ts_ms(e) < INCIDENT_END
    ]


def test_without_incidents_a_seed_gives_the_events_it_always_gave() -> None:
    # Digests of the events this seed gave before incidents existed: the draws must not move.
    city = load_city_profile()
    start = at("2024-09-14T07:58:00+07:00")
    digest = hashlib.sha256()
    for event in camera_events(city, start, start + 180_000, Random(72), 0.2):
        digest.update(orjson.dumps(event, option=orjson.OPT_SORT_KEYS))
    assert digest.hexdigest() == "50dc7142ff536fc1161eb48e2ea256929ed6a987b0ce7219ee26d3ee616f7ea5"
    traffic = city_sources(city, 72)[0]
    digest = hashlib.sha256()
    for sim_event in traffic.events(start + 30_500, start + 150_250, 0.2):
        digest.update(orjson.dumps(sim_event.value, option=orjson.OPT_SORT_KEYS))
    assert digest.hexdigest() == "b25088ecdfadc20a2f39d50e6437aebdb40e5e9611a55d235b99e58374066e4f"


@pytest.mark.parametrize("kind", INCIDENT_KINDS)
def test_an_incident_changes_only_its_camera_within_its_window(
    city: CityProfile, control: list[Event], kind: IncidentKind
) -> None:
    injected = with_incident(city, kind, 2.0 if kind == "flow_surge" else 0.5)
    assert outside(injected) == outside(control)
    assert inside(injected) != inside(control)
    again = with_incident(city, kind, 2.0 if kind == "flow_surge" else 0.5)
    assert again == injected


def test_an_offline_camera_sends_nothing(city: CityProfile, control: list[Event]) -> None:
    assert len(inside(control)) > 500
    assert inside(with_incident(city, "camera_offline")) == []


def test_a_silent_camera_sends_online_heartbeats_only(
    city: CityProfile, control: list[Event]
) -> None:
    events = inside(with_incident(city, "camera_silent"))
    assert len(events) == 6  # one heartbeat a minute
    assert {(e["kind"], e["status"]) for e in events} == {("status", "online")}


def test_a_stuck_camera_reports_one_class_at_one_speed(city: CityProfile) -> None:
    passages = inside(with_incident(city, "camera_stuck"), "passage")
    assert len(passages) > 500
    assert {(e["vehicle_class"], e["speed_kmh"]) for e in passages} == {("car", 42.0)}


def mean_speed(passages: list[Event]) -> float:
    speeds = [float(str(e["speed_kmh"])) for e in passages]
    return sum(speeds) / len(speeds)


def test_congestion_slows_the_camera_by_its_size(city: CityProfile, control: list[Event]) -> None:
    normal = [e for e in inside(control, "passage") if float(str(e["speed_kmh"])) < 60]
    slowed = [e for e in inside(with_incident(city, "congestion", 0.5), "passage")]
    # Speeding violations (limit + 5..35 km/h) are left out of the normal mean above.
    ratio = mean_speed([e for e in slowed if float(str(e["speed_kmh"])) < 60]) / mean_speed(normal)
    assert 0.47 < ratio < 0.53


@pytest.mark.parametrize(("kind", "size"), [("flow_drop", 0.3), ("flow_surge", 2.5)])
def test_flow_changes_scale_the_passage_rate(
    city: CityProfile, control: list[Event], kind: IncidentKind, size: float
) -> None:
    expected = len(inside(control, "passage")) * size
    observed = len(inside(with_incident(city, kind, size), "passage"))
    assert abs(observed - expected) < 4 * math.sqrt(expected)  # Poisson noise, twice over


def test_a_violation_spike_multiplies_violations_per_passage(
    city: CityProfile, control: list[Event]
) -> None:
    events = inside(with_incident(city, "violation_spike", 5.0))
    kinds = Counter(e["kind"] for e in events)
    normal = Counter(e["kind"] for e in inside(control))
    assert normal["violation"] < 0.03 * normal["passage"]
    rate = kinds["violation"] / kinds["passage"]
    assert 0.055 < rate < 0.105  # 5 × 1.6 %, with the noise of ~60 violations


@pytest.mark.parametrize(
    ("text", "start_ms", "end_ms", "size"),
    [
        ("congestion:VT-CAM-002:2024-09-16T07:32:30+07:00:6m", INCIDENT_START, INCIDENT_END, 0.5),
        ("congestion:VT-CAM-002:2024-09-16T00:32:30Z:90s:0.4", INCIDENT_START,
         INCIDENT_START + 90_000, 0.4),
        ("flow_surge:VT-CAM-003:+150s:2h:3", INCIDENT_START, INCIDENT_START + 7_200_000, 3.0),
        ("camera_offline:VT-CAM-003:+0m:0.5h", PEAK, PEAK + 1_800_000, 1.0),
    ],
)  # fmt: skip
def test_incidents_parse_from_both_ends(text: str, start_ms: int, end_ms: int, size: float) -> None:
    incident = parse_incident(text, PEAK, CAMERAS)
    assert (incident.start_ms, incident.end_ms, incident.size) == (start_ms, end_ms, size)
    assert incident.camera_id in CAMERAS


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("jam:VT-CAM-002:+1m:5m", "unknown kind 'jam'"),
        ("congestion:VT-CAM-999:+1m:5m", "unknown camera 'VT-CAM-999'"),
        ("congestion:VT-CAM-002:+1m:5", "DURATION '5' needs a unit"),
        ("congestion:VT-CAM-002:+1m:0s", "DURATION must be > 0"),
        ("congestion:VT-CAM-002:+1m:5m:0", "SIZE must be > 0"),
        ("congestion:VT-CAM-002:+1:5m", "START '+1' as an offset needs a unit"),
        ("congestion:VT-CAM-002:07:30:5m", "START '07:30' is neither RFC 3339"),
        ("congestion:VT-CAM-002:2024-09-16T07:30:00:5m", "needs an offset"),
        ("congestion:VT-CAM-002:5m", "expected KIND:CAMERA:START:DURATION[:SIZE]"),
    ],
)
def test_a_bad_incident_names_the_part(text: str, named: str) -> None:
    with pytest.raises(SimulatorError, match=f"^--incident {re.escape(repr(text))}: ") as raised:
        parse_incident(text, PEAK, CAMERAS)
    assert named in str(raised.value)
    assert "\n" not in str(raised.value)


def test_two_incidents_at_once_on_one_camera_are_refused() -> None:
    first = Incident("congestion", CAMERA, PEAK, PEAK + 600_000, 0.5)
    later = Incident("flow_drop", CAMERA, PEAK + 600_000, PEAK + 900_000, 0.3)
    check_no_overlap([first, later, Incident("flow_drop", "VT-CAM-003", PEAK, PEAK + 1, 0.3)])
    with pytest.raises(SimulatorError, match="overlap on camera VT-CAM-002"):
        check_no_overlap([later, Incident("camera_stuck", CAMERA, PEAK + 899_999, PEAK + 10**6, 1)])


def test_simulate_refuses_a_bad_incident_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [VTOPS, "simulate", "--incident", "congestion:VT-CAM-002:+1m:5m:-1"],
        env={**os.environ, "VTOPS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: --incident 'congestion:VT-CAM-002:+1m:5m:-1': SIZE must be > 0"
    ]


@pytest.mark.integration
def test_simulate_writes_the_ground_truth(pipeline: PipelineRun, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    done = pipeline.vtops(
        "simulate", "--start", "2024-09-16T07:30:00+07:00", "--no-pace", "--duration", "1",
        "--speedup", "60", "--rate", "50", "--output", "json",
        "--incident", "camera_offline:VT-CAM-002:+10s:2m",
        "--incident", "violation_spike:VT-CAM-003:2024-09-16T07:31:00+07:00:90s:4",
        "--truth", str(truth),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    assert lines == [
        {
            "kind": "camera_offline",
            "camera_id": "VT-CAM-002",
            "start": "2024-09-16T07:30:10+07:00",
            "start_ms": PEAK + 10_000,
            "end": "2024-09-16T07:32:10+07:00",
            "end_ms": PEAK + 130_000,
            "size": 1.0,
        },
        {
            "kind": "violation_spike",
            "camera_id": "VT-CAM-003",
            "start": "2024-09-16T07:31:00+07:00",
            "start_ms": PEAK + 60_000,
            "end": "2024-09-16T07:32:30+07:00",
            "end_ms": PEAK + 150_000,
            "size": 4.0,
        },
    ]
