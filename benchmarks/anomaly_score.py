"""How well the detector did: alert writes scored against the injected incidents. Pure.

An alarm is counted when it opens (research/anomalies.md, "Evaluating a detector honestly"):
a write in state `open`, which a reopen writes too. Its time is the write's `updated_at` (for a
reopen, `opened_at` keeps the first opening). An incident is detected when an alert of its kind
on its camera opens within [start, end + `LATE_MS`]; the time to detect is that opening's event
time minus the incident's start. An opening on the injected run that answers no incident is
`collateral` when it falls in such a window of another kind on the same camera (a frozen
camera also looks slow), else `spurious`. False alerts are the control run's openings.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulator.incidents import INCIDENT_KINDS, Incident

MINUTE_MS = 60_000
LATE_MS = 10 * MINUTE_MS
PARTITION_WIDE_KINDS = ("site_offline", "citywide_shift")
ALERT_KINDS = (*INCIDENT_KINDS, *PARTITION_WIDE_KINDS)
# The columns that make an alert write; all of them must match for two replays to agree.
WRITE_FIELDS = (
    "alert_id", "alert_key", "camera_id", "ward", "kind", "severity", "state", "status",
    "first_anomalous_at", "opened_at", "updated_at", "resolved_at", "observed", "expected",
    "ratio", "score", "reopens", "flapping", "rule_version", "baseline_version", "version",
)  # fmt: skip


@dataclass(frozen=True)
class Target:
    target_id: str
    share: float  # of incidents detected (within `within_min` when given)
    within_min: float | None
    median_min: float | None
    text: str


TARGETS: Mapping[str, Target] = {
    "camera_offline": Target("A1", 1.0, 2, None, "100% within 2 min"),
    "camera_silent": Target("A1", 0.99, 5, None, "≥ 99% within 5 min"),
    "congestion": Target("A2", 0.9, None, 5, "≥ 90%, median ≤ 5 min"),
    "flow_drop": Target("A3", 0.85, 10, None, "≥ 85% within 10 min"),
    "flow_surge": Target("A3", 0.85, 10, None, "≥ 85% within 10 min"),
    "violation_spike": Target("A3", 0.9, 15, None, "≥ 90% within 15 min"),
}
FALSE_ALERTS_TARGET = 0.05  # A4, per camera-day, all kinds
FLAP_TARGET = 0.05  # A4, share of episodes


@dataclass(frozen=True)
class Write:
    """One alert write, from the topic or the table, with times in epoch milliseconds."""

    alert_id: str
    kind: str
    camera_id: str
    state: str
    severity: str
    first_ms: int
    opened_ms: int
    at_ms: int  # updated_at: when this write was made, in event time
    resolved_ms: int | None
    observed: float
    expected: float
    ratio: float
    score: float
    reopens: int
    flapping: int
    version: int


def epoch_ms(value: object) -> int | None:
    """A time as the topic (RFC 3339 text) or the table (datetime) gives it."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"not a time: {value!r}")
    if value.tzinfo is None:  # clickhouse-connect gives some DateTime(tz) columns as naive UTC
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def _required_ms(row: Mapping[str, Any], name: str) -> int:
    found = epoch_ms(row[name])
    if found is None:
        raise ValueError(f"alert {row['alert_id']}: {name} is empty")
    return found


def write_of(row: Mapping[str, Any]) -> Write:
    return Write(
        alert_id=str(row["alert_id"]),
        kind=str(row["kind"]),
        camera_id=str(row["camera_id"]),
        state=str(row["state"]),
        severity=str(row["severity"]),
        first_ms=_required_ms(row, "first_anomalous_at"),
        opened_ms=_required_ms(row, "opened_at"),
        at_ms=_required_ms(row, "updated_at"),
        resolved_ms=epoch_ms(row["resolved_at"]),
        observed=float(row["observed"]),
        expected=float(row["expected"]),
        ratio=float(row["ratio"]),
        score=float(row["score"]),
        reopens=int(row["reopens"]),
        flapping=int(row["flapping"]),
        version=int(row["version"]),
    )


def comparable(row: Mapping[str, Any]) -> tuple[object, ...]:
    """A write as a tuple both replays' rows can be compared by (times as epoch ms, floats
    rounded where text and Float64 may differ in the last digit)."""
    values: list[object] = []
    for name in WRITE_FIELDS:
        value = row[name]
        if name.endswith("_at"):
            value = epoch_ms(value)
        elif isinstance(value, float):
            value = round(value, 9)
        values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class Replays:
    """A5: two replays of the same input."""

    writes: tuple[int, int]  # messages on the topic, each run
    distinct: tuple[int, int]  # distinct writes
    only_first: int  # distinct writes in one run's stream and not in the other's
    only_second: int
    final_rows: tuple[int, int]  # rows of traffic_alerts FINAL
    final_differ: int  # alert ids whose FINAL row differs or is missing in one

    @property
    def identical(self) -> bool:
        return (
            self.only_first == 0
            and self.only_second == 0
            and self.final_differ == 0
            and self.writes[0] == self.writes[1]
        )


def compare_replays(
    first: Sequence[Mapping[str, Any]],
    second: Sequence[Mapping[str, Any]],
    first_final: Sequence[Mapping[str, Any]],
    second_final: Sequence[Mapping[str, Any]],
) -> Replays:
    a = Counter(comparable(row) for row in first)
    b = Counter(comparable(row) for row in second)
    final_a = {row["alert_id"]: comparable(row) for row in first_final}
    final_b = {row["alert_id"]: comparable(row) for row in second_final}
    differ = sum(
        1 for key in final_a.keys() | final_b.keys() if final_a.get(key) != final_b.get(key)
    )
    return Replays(
        writes=(len(first), len(second)),
        distinct=(len(a), len(b)),
        only_first=len(a.keys() - b.keys()),
        only_second=len(b.keys() - a.keys()),
        final_rows=(len(first_final), len(second_final)),
        final_differ=differ,
    )


def openings(writes: Iterable[Write]) -> list[Write]:
    """Each alarm as it opened (first openings and reopens), once even if written twice."""
    seen: dict[tuple[str, int], Write] = {}
    for write in writes:
        if write.state == "open":
            seen.setdefault((write.alert_id, write.version), write)
    return sorted(seen.values(), key=lambda w: (w.at_ms, w.camera_id, w.kind))


def _answers(opening: Write, incident: Incident) -> bool:
    return (
        opening.camera_id == incident.camera_id
        and incident.start_ms <= opening.at_ms <= incident.end_ms + LATE_MS
    )


@dataclass(frozen=True)
class Detection:
    incident: Incident
    minutes: float | None  # opening − start, in event time; None: missed


@dataclass(frozen=True)
class KindScore:
    kind: str
    incidents: int
    detected: int
    median_min: float | None
    p90_min: float | None
    within: int | None  # detected within the target's time
    met: bool | None  # None: no target for the kind
    collateral: int  # openings of this kind during another kind's incident on the camera
    spurious: int  # openings of this kind on the injected run that answer no incident
    control: int  # openings of this kind on the control run


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value with at least 90% of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def detections(incidents: Iterable[Incident], opened: Sequence[Write]) -> list[Detection]:
    found = []
    for incident in incidents:
        times = [
            o.at_ms - incident.start_ms
            for o in opened
            if o.kind == incident.kind and _answers(o, incident)
        ]
        found.append(Detection(incident, min(times) / MINUTE_MS if times else None))
    return found


def unanswered(opened: Sequence[Write], incidents: Sequence[Incident]) -> list[tuple[Write, str]]:
    """Openings of the injected run that answer no incident: (opening, collateral|spurious)."""
    left = []
    for opening in opened:
        near = [i for i in incidents if _answers(opening, i)]
        if any(i.kind == opening.kind for i in near):
            continue
        left.append((opening, "collateral" if near else "spurious"))
    return left


def score_kinds(
    found: Sequence[Detection],
    extra: Sequence[tuple[Write, str]],
    control: Sequence[Write],
) -> list[KindScore]:
    scores = []
    for kind in ALERT_KINDS:
        own = [d for d in found if d.incident.kind == kind]
        minutes = [d.minutes for d in own if d.minutes is not None]
        target = TARGETS.get(kind)
        within: int | None = None
        met: bool | None = None
        median = statistics.median(minutes) if minutes else None
        if target is not None and own:
            limit = target.within_min
            within = sum(1 for m in minutes if limit is None or m <= limit)
            met = within / len(own) >= target.share
            if target.median_min is not None:
                met = met and median is not None and median <= target.median_min
        scores.append(
            KindScore(
                kind=kind,
                incidents=len(own),
                detected=len(minutes),
                median_min=median,
                p90_min=p90(minutes),
                within=within,
                met=met,
                collateral=sum(1 for w, why in extra if w.kind == kind and why == "collateral"),
                spurious=sum(1 for w, why in extra if w.kind == kind and why == "spurious"),
                control=sum(1 for w in control if w.kind == kind),
            )
        )
    return scores


@dataclass(frozen=True)
class Flapping:
    episodes: int
    flapped: int

    @property
    def rate(self) -> float | None:
        return self.flapped / self.episodes if self.episodes else None


def flapping(*runs: Sequence[Write]) -> Flapping:
    """Episodes (alert ids, per run) that reopened or were marked flapping, over all of them."""
    episodes: dict[tuple[int, str], bool] = {}
    for run, writes in enumerate(runs):
        for write in writes:
            key = (run, write.alert_id)
            episodes[key] = episodes.get(key, False) or write.reopens >= 1 or write.flapping == 1
    return Flapping(len(episodes), sum(episodes.values()))
