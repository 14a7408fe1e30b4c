"""The city's event sources: the one list to extend when payments and portal join.

Each source gets its own random stream of the run's seed (sources.source_rng), so adding one
does not change the events the others produce for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from city.profile import CityProfile
from simulator.incidents import Incident
from simulator.payments import TerminalTallies
from simulator.portal import DossierSteps
from simulator.sources import EventSource, source_rng
from simulator.traffic import CameraTraffic


def city_sources(
    profile: CityProfile,
    seed: int,
    *,
    holiday: bool = False,
    incidents: Sequence[Incident] = (),
) -> list[EventSource]:
    """Every input stream the simulator produces, in the order its events are merged;
    `incidents` change their cameras' events (simulator/incidents.py)."""
    traffic_rng = source_rng(seed, CameraTraffic.topic)
    incident_rng = source_rng(seed, f"{CameraTraffic.topic}/incidents")
    return [
        CameraTraffic(
            profile, traffic_rng, holiday=holiday, incidents=incidents, incident_rng=incident_rng
        ),
        TerminalTallies(profile, source_rng(seed, TerminalTallies.topic), holiday=holiday),
        DossierSteps(profile, source_rng(seed, DossierSteps.topic), holiday=holiday),
    ]
