"""The life of a traffic alert: opened, updated, resolved, reopened, flapping, written.

The anomaly rules (watch.py) say when a rule holds or is calm; `AlertLog` turns
that into writes of `traffic_alerts` rows (contract section 7), each with a larger `version`.
Everything here is a function of the calls made, in order, so replays write the same rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Literal

from city.clock import MINUTE_MS, aligned_start, local_time
from streams.engine.definition import Records
from streams.traffic.anomaly.kinds import Kind

ALERTS_TABLE = "traffic_alerts"
RULES_VERSION = 1
# The camera of an alert about a whole partition (site_offline, citywide_shift).
PARTITION_WIDE = "*"
# An alert that re-triggers this soon after resolving reopens instead of starting anew.
REOPEN_WITHIN_MS = 15 * MINUTE_MS
# While open, an alert is rewritten with fresh evidence at most this often (and on a change of
# severity), so the table shows the current picture without a row per minute.
REFRESH_MS = 5 * MINUTE_MS
# Flapping as Naemon judges it: state changes within the last 21 checks (minutes here).
FLAP_WINDOW_MS = 21 * MINUTE_MS
FLAP_TRANSITIONS = 4
KEEP_FIRING_MS = 15 * MINUTE_MS

Severity = Literal["info", "warning", "critical"]
Status = Literal["open", "resolved"]


@dataclass
class Evidence:
    observed: float
    expected: float
    ratio: float
    score: float


@dataclass
class Incident:
    """One alert's life: opened, updated, resolved, perhaps reopened (same id)."""

    alert_id: str
    kind: str
    first_ms: int  # the first anomalous minute, which names the alert
    opened_ms: int
    severity: Severity
    evidence: Evidence
    status: Status = "open"
    resolved_ms: int | None = None
    written_ms: int = 0
    writes: int = 0
    reopens: int = 0
    transitions: list[int] = field(default_factory=list)
    clear_run: int = 0
    # The end of the minute its evidence was last judged on; the evidence covers the rule's
    # span of minutes before it (revisions.py).
    evidence_until_ms: int = 0
    # Its evidence changed since it was written, by late events (revisions.py).
    revised: bool = False

    @property
    def open(self) -> bool:
        return self.status == "open"

    def flapping(self, now_ms: int) -> bool:
        return len(_recent(self.transitions, now_ms)) >= FLAP_TRANSITIONS


def _recent(transitions: list[int], now_ms: int) -> list[int]:
    return [t for t in transitions if now_ms - t < FLAP_WINDOW_MS]


def alert_id(kind: str, camera_id: str, first_ms: int, partition: str | None = None) -> str:
    """A function of the alert's kind, camera and first anomalous minute (contract section 7),
    and for a partition's finding of a city-wide alert, of the partition too."""
    named = camera_id if partition is None else f"{camera_id}|{partition}"
    return hashlib.sha1(f"{kind}|{named}|{first_ms}".encode()).hexdigest()[:20]


def is_open(incidents: dict[str, Incident], kind: str) -> bool:
    incident = incidents.get(kind)
    return incident is not None and incident.open


def incident_from_state(state: dict[str, Any]) -> Incident:
    return Incident(**{**state, "evidence": Evidence(**state["evidence"])})


def incidents_from_state(state: dict[str, Any]) -> dict[str, Incident]:
    return {kind: incident_from_state(value) for kind, value in state.items()}


@dataclass(frozen=True)
class About:
    """What an alert is about, with where its writes go: one camera (or a whole partition,
    `PARTITION_WIDE`) and its alerts by kind as the detector's state keeps them."""

    camera_id: str
    incidents: dict[str, Incident]
    records: Records
    # Of a partition-wide alert, the partition's name (PartitionWatch.name): each partition
    # that finds a city-wide event writes a row of its own, and the store's
    # `traffic_alerts_merged` makes one alert of them (sinks/clickhouse/migrations.py).
    partition: str | None = None


@dataclass(frozen=True)
class Finding:
    """A rule holds at `now_ms`: what it found, since which minute, how sure and how bad."""

    kind: Kind
    now_ms: int
    first_ms: int
    evidence: Evidence
    severity: Severity


class AlertLog:
    """Writes alerts into a stream's records; `incidents` maps kind to the alert of one camera
    (or partition), as kept in the detector's state."""

    def __init__(
        self,
        ward_of: dict[str, str],
        baseline_version_at: Callable[[int], int],
        clear_minutes: int,
        tz: tzinfo,
    ) -> None:
        self._ward_of = ward_of
        self._tz = tz
        self._baseline_version_at = baseline_version_at
        self._clear_minutes = clear_minutes

    def raise_(self, about: About, finding: Finding) -> None:
        """The rule holds: open the alert, reopen a recent one, or refresh an open one."""
        kind, now, evidence, severity = (
            finding.kind, finding.now_ms, finding.evidence, finding.severity)  # fmt: skip
        incident = about.incidents.get(kind)
        first_ms = aligned_start(finding.first_ms, MINUTE_MS)
        if incident is not None and incident.open:
            incident.clear_run = 0
            changed = severity != incident.severity
            incident.evidence, incident.severity = evidence, severity
            incident.evidence_until_ms = now
            if changed or now - incident.written_ms >= REFRESH_MS:
                self._write(about, incident, "updated", now)
            return
        if incident is not None and now - (incident.resolved_ms or now) <= REOPEN_WITHIN_MS:
            incident.status, incident.resolved_ms = "open", None
            incident.reopens += 1
            incident.transitions = _recent([*incident.transitions, now], now)
        else:
            incident = Incident(
                alert_id(kind, about.camera_id, first_ms, about.partition),
                kind,
                first_ms,
                now,
                severity,
                evidence,
                transitions=[now],
            )
            about.incidents[kind] = incident
        incident.evidence, incident.severity, incident.clear_run = evidence, severity, 0
        incident.evidence_until_ms = now
        self._write(about, incident, "open", now)

    def write_revised(self, about: About, now: int) -> None:
        """Every open alert of `about` whose evidence late events changed since it was written:
        rewritten with it (once per tick, however many late events came)."""
        for incident in about.incidents.values():
            if incident.revised and incident.open:
                self._write(about, incident, "updated", now)

    def settle(
        self,
        about: About,
        kind: Kind,
        calm: bool,
        start_ms: int,
        clear_minutes: int | None = None,
    ) -> None:
        """One more minute of evidence for an open alert: resolve it after enough calm ones."""
        incident = about.incidents.get(kind)
        if incident is None or not incident.open:
            self._forget(about.incidents, kind, start_ms)
            return
        incident.clear_run = incident.clear_run + 1 if calm else 0
        if incident.clear_run >= (clear_minutes or self._clear_minutes):
            self.clear(about, kind, start_ms + MINUTE_MS)

    def clear(self, about: About, kind: Kind, now: int, *, at_once: bool = False) -> None:
        incident = about.incidents.get(kind)
        if incident is None or not incident.open:
            self._forget(about.incidents, kind, now)
            return
        if (
            not at_once
            and incident.flapping(now)
            and now - incident.transitions[-1] < KEEP_FIRING_MS
        ):
            return  # a flapping alert stays open until it has been calm for a while
        self.resolve(about, incident, now)

    def resolve(self, about: About, incident: Incident, now: int) -> None:
        incident.status, incident.resolved_ms, incident.clear_run = "resolved", now, 0
        incident.transitions = _recent([*incident.transitions, now], now)
        self._write(about, incident, "resolved", now)

    def _forget(self, incidents: dict[str, Incident], kind: str, now: int) -> None:
        incident = incidents.get(kind)
        if incident is not None and now - (incident.resolved_ms or now) > REOPEN_WITHIN_MS:
            del incidents[kind]

    def _write(self, about: About, incident: Incident, state: str, now: int) -> None:
        camera_id = about.camera_id
        incident.revised = False
        incident.writes += 1
        incident.written_ms = now
        evidence = incident.evidence
        resolved = incident.resolved_ms
        about.records.add(
            ALERTS_TABLE,
            {
                "alert_id": incident.alert_id,
                "alert_key": f"{incident.kind}|{camera_id}",
                "camera_id": camera_id,
                "ward": self._ward_of.get(camera_id, PARTITION_WIDE),
                "kind": incident.kind,
                "severity": incident.severity,
                "state": state,
                "status": incident.status,
                "first_anomalous_at": local_time(incident.first_ms, self._tz),
                "opened_at": local_time(incident.opened_ms, self._tz),
                "updated_at": local_time(now, self._tz),
                "resolved_at": None if resolved is None else local_time(resolved, self._tz),
                "observed": float(evidence.observed),
                "expected": float(evidence.expected),
                "ratio": float(evidence.ratio),
                "score": float(evidence.score),
                "reopens": incident.reopens,
                "flapping": int(incident.flapping(now)),
                "rule_version": RULES_VERSION,
                # Writes come at the end of the minute judged: that minute's version.
                "baseline_version": self._baseline_version_at(now - 1),
                "version": incident.writes,
            },
        )
