"""Evidence that stays current: a late event (within the flow window's grace) of a minute the
watch has already judged is counted into that minute, and the open alerts whose evidence spans
it get their evidence recomputed; the watch writes them at its next tick (watch.py).

A late event never opens, resolves or retracts an alert: each minute is judged once, when it
settles, so the lifecycle stays a function of the minutes as they were then. It only makes the
evidence shown (observed, ratio, score) what the minutes now hold, as `traffic_flow_1m` does.
The kinds whose evidence is counted from the minutes are revised: congestion (the minute's mean
speed), flow_drop and flow_surge (the vehicles of their 5 minutes), violation_spike (the
violations, and the expectation that follows the vehicles, of their 15 minutes). Offline,
silent and stuck are not: a late event is no news to them.
"""

from __future__ import annotations

from collections.abc import Callable

from city.clock import MINUTE_MS
from schemas.camera import VEHICLE_CLASSES
from schemas.fast import Passage, Violation
from streams.traffic.anomaly.alerts import Evidence, Incident
from streams.traffic.anomaly.rules import Rules, flow_z, violation_evidence
from streams.traffic.anomaly.state import CameraWatch, Minute

# The minutes each revised kind's evidence spans, ending at its `evidence_until_ms`.
SPANS: dict[str, Callable[[Rules], int]] = {
    "congestion": lambda _rules: 1,
    "flow_drop": lambda rules: rules.flow_minutes,
    "flow_surge": lambda rules: rules.flow_minutes,
    "violation_spike": lambda rules: rules.violation_minutes,
}
CLASS_INDEX = {vehicle_class: i for i, vehicle_class in enumerate(VEHICLE_CLASSES)}


def revise(rules: Rules, camera: CameraWatch, event: Passage | Violation, minute: Minute) -> None:
    """Count `event` into `minute`, a healthy minute of `camera` already judged, and recompute
    the evidence of the camera's open alerts that span it (marked `revised`)."""
    spanning = [
        (incident, _span(camera, incident, SPANS[incident.kind](rules)))
        for incident in camera.incidents.values()
        if incident.open and incident.kind in SPANS
    ]
    affected = [(i, span) for i, span in spanning if any(m is minute for m in span)]
    # What a violation spike's expectation rests on, before the event: its rate per vehicle.
    rates = {
        id(incident): incident.evidence.expected / max(sum(m.vehicles for m in span), 1)
        for incident, span in affected
    }
    _count(minute, event)
    for incident, span in affected:
        incident.evidence = _evidence(rules, incident, span, rates[id(incident)])
        incident.revised = True


def _span(camera: CameraWatch, incident: Incident, minutes: int) -> list[Minute]:
    first = incident.evidence_until_ms - minutes * MINUTE_MS
    return [m for m in camera.minutes if first <= m.start_ms < incident.evidence_until_ms]


def _count(minute: Minute, event: Passage | Violation) -> None:
    """As the flow window counts it (streams/traffic/flow.py)."""
    if isinstance(event, Violation):
        minute.violations += 1
        return
    minute.vehicles += 1
    minute.classes[CLASS_INDEX[event.vehicle_class]] += 1
    if event.speed_kmh is not None:
        minute.speed_sum += event.speed_kmh
        minute.speed_n += 1


def _evidence(rules: Rules, incident: Incident, span: list[Minute], rate: float) -> Evidence:
    old = incident.evidence
    if incident.kind == "congestion":
        speed, usual = span[-1].speed, old.expected
        if speed is None or old.score == 0:
            return old
        scale = (old.observed - usual) / old.score  # the z it was judged with, unchanged
        return Evidence(speed, usual, speed / usual, (speed - usual) / scale)
    if incident.kind == "violation_spike":
        expected = rate * sum(m.vehicles for m in span)
        return violation_evidence(sum(m.violations for m in span), expected)
    observed = float(sum(m.vehicles for m in span))  # flow: its expectation stays
    return Evidence(observed, old.expected, observed / old.expected,
                    flow_z(rules, observed, old.expected))  # fmt: skip
