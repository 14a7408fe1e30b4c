"""The anomaly benchmark's input: a city of a few cameras, whole days of their traffic from a
Monday without public holidays, the incidents injected into it, and the topics filled with it.

Incidents are drawn from the seed: cameras and start times at random, one incident per camera
at a time and at least `GAP_MS` apart, so each alert can be told which incident it answers.
`camera_offline` may start at any hour. The other kinds start and end between `DAY_START_H`
and `DAY_END_H`: their rules are built not to fire where the baseline expects almost nothing
(silent needs `Rules.silent_expected` vehicles missing, flow `Rules.flow_min_expected`,
violations `Rules.violation_min`), and a quiet night has too few vehicles for an incident
there to be visible at all, to a rule or to an operator. Congestion goes to cameras that report
speeds (urban-management cameras do not, simulator/mix.py). No incident starts in the first
hour (the detector's history and city factor fill up) or ends in the last one (the
partitions' stream time stops with the input, so its last minutes are never judged).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Producer  # type: ignore[import-untyped]
from kafka.partitioner.default import murmur2

from benchmarks.topic import PRODUCER_CONFIG, BenchTopic
from city.calendar import is_public_holiday
from city.profile import CityProfile
from simulator.demand import ARTERIAL_PEAK_PER_S, SIDE_STREET_PEAK_PER_S
from simulator.incidents import DEFAULT_SIZE, INCIDENT_KINDS, Incident, IncidentKind
from simulator.mix import camera_mix
from simulator.sources import source_rng
from simulator.traffic import CameraTraffic, WeeklyShape
from vtops.kafka.topics import ensure_topics

PROFILE = Path(__file__).resolve().parents[1] / "city" / "profiles" / "vung-tau.json"
FIRST_MONDAY = date(2025, 9, 15)  # in the past: the worker refuses events ahead of the clock
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
DURATION_MIN: Mapping[IncidentKind, int] = {
    "camera_offline": 10,
    "camera_silent": 15,
    "camera_stuck": 20,
    "congestion": 15,
    "flow_drop": 25,
    "flow_surge": 25,
    "violation_spike": 25,
}
SIZE: Mapping[IncidentKind, float] = {**DEFAULT_SIZE, "congestion": 0.5, "violation_spike": 5.0}
DAY_START_H, DAY_END_H = 7, 20
GAP_MS = 30 * MINUTE_MS
EDGE_MS = HOUR_MS
SLICE_MS = HOUR_MS  # city time generated and sent at a time
CAMERAS_PER_PARTITION = 4


def first_monday(days: int) -> date:
    """The first Monday from FIRST_MONDAY on whose `days` days hold no public holiday."""
    monday = FIRST_MONDAY
    while any(is_public_holiday(monday + timedelta(days=d)) for d in range(days)):
        monday += timedelta(weeks=1)
    return monday


def trimmed_profile(cameras: int, partitions: int, scratch: Path) -> Path:
    """The packaged profile with `cameras` of its cameras, written under `scratch`.

    Detection runs on each partition's stream time, which only the partition's own cameras
    move: a partition whose only camera goes dark has no clock, and one with two barely ticks
    at night. The city has about 33 cameras a partition; this one puts at least
    `CAMERAS_PER_PARTITION` in every partition it uses (the others stay empty), taken evenly
    spread over each partition's list of cameras (so over wards and kinds of camera)."""
    document = json.loads(PROFILE.read_text())
    every = document["cameras"]
    if not CAMERAS_PER_PARTITION <= cameras <= len(every):
        raise SystemExit(f"--cameras: between {CAMERAS_PER_PARTITION} and {len(every)}, "
                         f"got {cameras}")  # fmt: skip
    by_partition: dict[int, list[dict[str, object]]] = {}
    for camera in every:
        by_partition.setdefault(partition_of(str(camera["camera_id"]), partitions), []).append(
            camera
        )
    used = sorted(by_partition)[: max(1, cameras // CAMERAS_PER_PARTITION)]
    chosen: list[dict[str, object]] = []
    for n, partition in enumerate(used):
        own = by_partition[partition]
        take = cameras // len(used) + (n < cameras % len(used))
        chosen += [own[i * len(own) // take] for i in range(take)]
    document["cameras"] = sorted(chosen, key=lambda camera: str(camera["camera_id"]))
    path = scratch / "city.json"
    path.write_text(json.dumps(document, ensure_ascii=False))
    return path


_BASE = {True: ARTERIAL_PEAK_PER_S, False: SIDE_STREET_PEAK_PER_S}


def perturbed_profile(profile: CityProfile, seed: int) -> CityProfile:
    """The city as its traffic really is, unlike the priors the worker starts from (issue 18):
    each camera's lanes scaled so that its volume moves by a seeded factor in 0.3-3x (the
    simulator's volume grows as lanes^0.6; 1-16 lanes), and one camera in three on
    the other kind of road (other speeds, speeding, violation share and volume). Only the
    traffic is generated from it; the worker keeps the packaged profile and its priors."""
    rng = random.Random(f"{seed}/perturbed-city")
    cameras = []
    for camera in profile.cameras:
        factor = math.exp(rng.uniform(math.log(0.3), math.log(3.0)))
        arterial = camera.arterial != (rng.random() < 1 / 3)
        # The other kind of road has another base volume: the lanes make up for it.
        factor *= _BASE[camera.arterial] / _BASE[arterial]
        lanes = min(16, max(1, round(camera.lanes * factor ** (1 / 0.6))))
        cameras.append(camera.model_copy(update={"lanes": lanes, "arterial": arterial}))
    return profile.model_copy(update={"cameras": tuple(cameras)})


# The perturbed city's week, unlike the model's (issue 18): a Sunday morning market doubles the
# traffic of the cameras near it, and the weekend exodus adds a third to every camera's Friday
# evening (a weekday slot the baselines pool with the other weekdays).
MARKET_HOURS = (5, 11)
MARKET_FACTOR = 2.0
MARKET_SHARE = 1 / 3
EXODUS_HOURS = (16, 20)
EXODUS_FACTOR = 1.3


def market_week(profile: CityProfile, seed: int) -> WeeklyShape:
    """The perturbed city's weekly shape: a seeded third of the cameras are near the market."""
    rng = random.Random(f"{seed}/market-week")
    near = {c.camera_id for c in profile.cameras if rng.random() < MARKET_SHARE}

    def factor(camera_id: str, local: datetime) -> float:
        if local.weekday() == 6 and camera_id in near:
            return MARKET_FACTOR if MARKET_HOURS[0] <= local.hour < MARKET_HOURS[1] else 1.0
        if local.weekday() == 4 and EXODUS_HOURS[0] <= local.hour < EXODUS_HOURS[1]:
            return EXODUS_FACTOR
        return 1.0

    return factor


def partition_of(camera_id: str, partitions: int) -> int:
    """The partition the contract's keying (Java's murmur2 of camera_id) sends a camera to."""
    return int((murmur2(camera_id.encode()) & 0x7FFFFFFF) % partitions)


def plan_incidents(
    profile: CityProfile, start_ms: int, days: int, per_kind: int, seed: int
) -> list[Incident]:
    """`per_kind` incidents of every kind, at seeded cameras and times (see the module)."""
    rng = random.Random(f"{seed}/anomaly-benchmark")
    cameras = [camera.camera_id for camera in profile.cameras]
    with_speeds = [c.camera_id for c in profile.cameras if camera_mix(c).reports_speed]
    end_ms = start_ms + days * DAY_MS
    planned: list[Incident] = []
    for kind in INCIDENT_KINDS:
        duration_ms = DURATION_MIN[kind] * MINUTE_MS
        pool = with_speeds if kind == "congestion" else cameras
        for _ in range(per_kind):
            for _attempt in range(10_000):
                camera_id = rng.choice(pool)
                if kind == "camera_offline":
                    low, high = start_ms + EDGE_MS, end_ms - EDGE_MS - duration_ms
                else:
                    day = start_ms + rng.randrange(days) * DAY_MS
                    low = max(day + DAY_START_H * HOUR_MS, start_ms + EDGE_MS)
                    high = min(day + DAY_END_H * HOUR_MS, end_ms - EDGE_MS) - duration_ms
                if high <= low:
                    continue
                at = low + rng.randrange((high - low) // 1000) * 1000
                incident = Incident(kind, camera_id, at, at + duration_ms, SIZE[kind])
                if all(_apart(incident, other) for other in planned):
                    planned.append(incident)
                    break
            else:
                raise SystemExit(
                    f"no room for {per_kind} {kind} incidents on {len(pool)} cameras in {days} "
                    "days: fewer --per-kind, or more --cameras or --days"
                )
    return sorted(planned, key=lambda i: (i.start_ms, i.camera_id))


def _apart(one: Incident, other: Incident) -> bool:
    return (
        one.camera_id != other.camera_id
        or one.start_ms >= other.end_ms + GAP_MS
        or other.start_ms >= one.end_ms + GAP_MS
    )


@dataclass(frozen=True)
class Fill:
    events: int
    seconds: float  # simulator generation included


def fill(
    topic: BenchTopic,
    profile: CityProfile,
    start_ms: int,
    end_ms: int,
    seed: int,
    incidents: list[Incident],
    weekly: WeeklyShape | None = None,
) -> Fill:
    """Create the contract topics and send the cameras' events of [start_ms, end_ms), keyed by
    camera_id, as fast as possible. The random streams are those `vtops simulate` gives the
    seed (simulator/city.py), so the control run is the injected run without its incidents."""
    ensure_topics(topic.settings())
    traffic = CameraTraffic(
        profile,
        source_rng(seed, CameraTraffic.topic),
        incidents=incidents,
        incident_rng=source_rng(seed, f"{CameraTraffic.topic}/incidents"),
        weekly=weekly,
    )
    producer = Producer({"bootstrap.servers": topic.bootstrap, **PRODUCER_CONFIG})
    started = time.perf_counter()
    sent = 0
    for slice_start in range(start_ms, end_ms, SLICE_MS):
        for event in traffic.events(slice_start, min(slice_start + SLICE_MS, end_ms), 1.0):
            value, key = orjson.dumps(event.value), event.key.encode()
            while True:
                try:
                    producer.produce(topic.name, value=value, key=key)
                    break
                except BufferError:  # the local queue is full: let librdkafka send some
                    producer.poll(0.05)
            sent += 1
            if sent % 10_000 == 0:
                producer.poll(0)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} camera events still unsent to {topic.name} after 120 s")
    return Fill(sent, time.perf_counter() - started)


def epoch_ms(day: date, profile: CityProfile) -> int:
    """Midnight of `day` in the city, in epoch milliseconds."""
    return round(datetime(day.year, day.month, day.day, tzinfo=profile.tz).timestamp() * 1000)
