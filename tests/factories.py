"""Camera events for tests, and an independent model of what the contract says they produce."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tests.pipeline import partition_of

MINUTE_MS = 60_000
T0 = 1_726_272_000_000  # 2024-09-14T07:00:00+07:00
PCU = {"bicycle": 0.2, "motorbike": 0.3, "car": 1.0, "bus": 2.5, "truck": 2.5, "other": 1.0}
CLASSES = ["motorbike", "car", "bus", "truck", "bicycle", "other"]


def passage(
    event_id: str,
    camera_id: str,
    ts: int,
    vehicle_class: str = "motorbike",
    speed_kmh: float | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "camera_id": camera_id,
        "ts": ts,
        "kind": "passage",
        "vehicle_class": vehicle_class,
    }
    if speed_kmh is not None:
        event["speed_kmh"] = speed_kmh
    return event


def violation(
    event_id: str,
    camera_id: str,
    ts: int,
    violation_type: str = "red_light",
    plate: str | None = "72A-123.45",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "camera_id": camera_id,
        "ts": ts,
        "kind": "violation",
        "vehicle_class": "car",
        "violation_type": violation_type,
        "plate": plate,
    }


def status(event_id: str, camera_id: str, ts: int, state: str = "online") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "camera_id": camera_id,
        "ts": ts,
        "kind": "status",
        "status": state,
    }


@dataclass
class ExpectedTraffic:
    """The contract's section 5 applied naively, event by event, in each partition's order."""

    partitions: int
    grace_ms: int = 120_000
    flow: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    violations: set[str] = field(default_factory=set)
    late: int = 0
    duplicates: int = 0
    _ids: set[str] = field(default_factory=set)
    _stream_time: dict[int, int] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        if event["kind"] == "status":
            return
        partition = partition_of(event["camera_id"], self.partitions)
        now = max(self._stream_time.get(partition, event["ts"]), event["ts"])
        self._stream_time[partition] = now
        if event["kind"] == "violation":
            self.violations.add(event["event_id"])
        start = event["ts"] - event["ts"] % MINUTE_MS
        if start + MINUTE_MS + self.grace_ms <= now:
            # Late before it is a duplicate: the partition has passed its window.
            self.late += 1
            return
        if event["event_id"] in self._ids:
            self.duplicates += 1
            return
        self._ids.add(event["event_id"])
        window = self.flow.setdefault(
            (event["camera_id"], start),
            {"vehicles": 0, **dict.fromkeys(CLASSES, 0), "speeds": [], "violations": 0},
        )
        if event["kind"] == "violation":
            window["violations"] += 1
            return
        window["vehicles"] += 1
        window[event["vehicle_class"]] += 1
        if "speed_kmh" in event:
            window["speeds"].append(event["speed_kmh"])

    def rows(self) -> dict[tuple[str, int], tuple[Any, ...]]:
        """(camera_id, window start s) → (vehicles, 6 classes, pcu, speed, violations, final)."""
        rows = {}
        for (camera_id, start), w in self.flow.items():
            partition = partition_of(camera_id, self.partitions)
            final = int(start + MINUTE_MS + self.grace_ms <= self._stream_time[partition])
            speeds = w["speeds"]
            rows[(camera_id, start // 1000)] = (
                w["vehicles"],
                *(w[c] for c in CLASSES),
                round(sum(w[c] * PCU[c] for c in CLASSES), 6),
                round(sum(speeds) / len(speeds), 6) if speeds else None,
                w["violations"],
                final,
            )
        return rows


def random_traffic(
    rng: random.Random, cameras: list[str], minutes: int, count: int, duplicate_share: float = 0.1
) -> list[dict[str, Any]]:
    """Mostly-ordered traffic with jitter, re-sent duplicates and stragglers."""
    events: list[dict[str, Any]] = []
    span = minutes * MINUTE_MS
    for n in range(count):
        ts = T0 + n * span // count + rng.randint(-20_000, 5_000)
        if rng.random() < 0.02:
            ts -= rng.randint(60_000, 400_000)  # a straggler, late within or beyond grace
        camera = rng.choice(cameras)
        if rng.random() < 0.05:
            events.append(violation(f"v{n}", camera, ts, rng.choice(["red_light", "no_helmet"])))
        else:
            speed = round(rng.uniform(10, 70), 1) if rng.random() < 0.7 else None
            events.append(passage(f"p{n}", camera, ts, rng.choice(CLASSES), speed))
        if rng.random() < duplicate_share:
            events.append(dict(events[-1]))
    rng.shuffle(events[-len(events) // 50 :])
    return events


def expected_from(events: list[dict[str, Any]], partitions: int) -> ExpectedTraffic:
    expected = ExpectedTraffic(partitions)
    for event in events:
        expected.add(event)
    return expected
