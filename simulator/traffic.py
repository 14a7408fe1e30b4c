"""camera.events for the whole city: passages, violations and heartbeats, from one seed.

Pure: no I/O, no wall clock; the same profile, window, seed and scale give the same events.
Each camera is a Poisson process whose rate follows its road's daily curve (demand.py), held
constant over each city minute; the vehicle on each passage is drawn from mix.py. Events are
dicts exactly per contract section 4, ready for JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from operator import itemgetter
from random import Random

from city.profile import CityProfile
from city.topics import CAMERA_EVENTS
from schemas.camera import VehicleClass, ViolationType
from simulator.demand import (
    CameraDemand,
    Moment,
    camera_demand,
    demand_level,
    flow_level,
    speed_factor,
)
from simulator.incidents import STUCK_CLASS, STUCK_SPEED_KMH, Effect, Incident, check_no_overlap
from simulator.mix import (
    STATUS_TABLE,
    VIOLATION_PLATE_READS,
    CameraMix,
    Table,
    camera_mix,
    class_table,
)
from simulator.plates import plate_for
from simulator.sources import Load, SimEvent

# The rate of every camera is re-evaluated each city minute; heartbeats come once a minute.
STEP_MS = 60_000
HEARTBEAT_MS = 60_000
# Share of events whose `ts` is epoch milliseconds instead of RFC 3339 (both are contract).
EPOCH_MS_SHARE = 0.1
# Averaging the natural load over a long window uses at most this many steps.
MAX_LOAD_STEPS = 1_440
# Offences committed standing still: the violation reports speed 0.
STANDING: frozenset[ViolationType] = frozenset({"illegal_parking", "crosswalk_stop"})
NO_EFFECT = Effect()

Event = dict[str, object]


class _Camera:
    __slots__ = ("beach", "camera_id", "demand", "lanes", "mix")

    def __init__(self, demand: CameraDemand) -> None:
        self.demand = demand
        self.camera_id = demand.camera.camera_id
        self.lanes = demand.camera.lanes
        self.beach = demand.camera.beach_road
        self.mix: CameraMix = camera_mix(demand.camera)


# A city's own weekly rhythm on top of the model's daily curves (a market day, say): the factor
# on a camera's rate at a local time.
WeeklyShape = Callable[[str, datetime], float]


class CameraTraffic:
    """The camera.events source (see sources.EventSource) of every camera in the profile.

    Incidents (simulator/incidents.py) change their camera's events within their window. The
    camera's ordinary events are still drawn from `rng` and then dropped, and the incident's
    own come from `incident_rng`: every other event of the run is exactly the one the same
    seed gives without incidents, so a control run differs only where incidents are.
    """

    topic = CAMERA_EVENTS

    def __init__(
        self,
        profile: CityProfile,
        rng: Random,
        *,
        holiday: bool = False,
        incidents: Sequence[Incident] = (),
        incident_rng: Random | None = None,
        weekly: WeeklyShape | None = None,
    ) -> None:
        check_no_overlap(incidents)
        self._weekly = weekly
        self._rng = rng
        self._incident_rng = incident_rng or Random("incidents")
        self._incidents: dict[str, list[Incident]] = {}
        for incident in incidents:
            self._incidents.setdefault(incident.camera_id, []).append(incident)
        self._tz: tzinfo = profile.tz
        self._holiday = holiday
        self._cameras = [_Camera(camera_demand(camera)) for camera in profile.cameras]
        self._offset: tzinfo = UTC
        self._suffix = "Z"
        self._seconds: dict[int, str] = {}

    def natural_load(self, start_ms: int, end_ms: int) -> Load:
        """Mean passages and violations per city second at scale 1; heartbeats are fixed."""
        span = max(end_ms - start_ms, 1)
        step = max(STEP_MS, span // MAX_LOAD_STEPS)
        total = 0.0
        for at in range(start_ms, start_ms + span, step):
            width = min(step, start_ms + span - at)
            moment = self._moment(at + width // 2)
            per_s = sum(
                flow_level(demand_level(c.demand, moment))
                * c.demand.peak_per_s
                * (1 + c.mix.violation_share)
                for c in self._cameras
            )
            total += per_s * width
        return Load(scaled=total / span, fixed=len(self._cameras) * 1000 / HEARTBEAT_MS)

    def events(self, start_ms: int, end_ms: int, rate_scale: float) -> Iterator[SimEvent]:
        for ts_ms, event in self.timed_events(start_ms, end_ms, rate_scale):
            yield SimEvent(CAMERA_EVENTS, str(event["camera_id"]), event, str(event["kind"]), ts_ms)

    def timed_events(
        self, start_ms: int, end_ms: int, rate_scale: float
    ) -> Iterator[tuple[int, Event]]:
        """(ts in epoch ms, event) for start_ms <= ts < end_ms, in time order."""
        step_start = start_ms
        while step_start < end_ms:
            step_end = min(end_ms, (step_start // STEP_MS + 1) * STEP_MS)
            yield from self._step(step_start, step_end, rate_scale)
            step_start = step_end

    def _moment(self, at_ms: int) -> Moment:
        return Moment.at(datetime.fromtimestamp(at_ms / 1000, self._tz), self._holiday)

    def _step(self, start_ms: int, end_ms: int, rate_scale: float) -> list[tuple[int, Event]]:
        rng = self._rng
        local = datetime.fromtimestamp((start_ms + end_ms) // 2 / 1000, self._tz)
        # A fixed offset formats much faster than a zone; no offset changes within a minute.
        offset = local.utcoffset() or timedelta(0)
        self._offset = timezone(offset)
        self._suffix = _offset_text(offset)
        self._seconds.clear()
        moment = Moment.at(local, self._holiday)
        out: list[tuple[int, Event]] = []
        for camera in self._cameras:
            scale = rate_scale
            if self._weekly is not None:
                scale *= self._weekly(camera.camera_id, local)
            incidents = [
                incident
                for incident in self._incidents.get(camera.camera_id, ())
                if incident.start_ms < end_ms and start_ms < incident.end_ms
            ]
            if incidents:
                self._incident_step(camera, incidents, start_ms, end_ms, moment, scale, out)
            else:
                self._camera_step(camera, start_ms, end_ms, moment, scale, rng, NO_EFFECT, out)
        out.sort(key=itemgetter(0))
        return out

    def _incident_step(
        self,
        camera: _Camera,
        incidents: list[Incident],
        start_ms: int,
        end_ms: int,
        moment: Moment,
        rate_scale: float,
        out: list[tuple[int, Event]],
    ) -> None:
        # The ordinary events are drawn all the same, so the run's other events do not change.
        ordinary: list[tuple[int, Event]] = []
        self._camera_step(
            camera, start_ms, end_ms, moment, rate_scale, self._rng, NO_EFFECT, ordinary
        )
        out.extend(
            (ts_ms, event)
            for ts_ms, event in ordinary
            if not any(i.start_ms <= ts_ms < i.end_ms for i in incidents)
        )
        for incident in incidents:
            self._camera_step(
                camera,
                max(start_ms, incident.start_ms),
                min(end_ms, incident.end_ms),
                moment,
                rate_scale,
                self._incident_rng,
                incident.effect,
                out,
            )

    def _camera_step(
        self,
        camera: _Camera,
        start_ms: int,
        end_ms: int,
        moment: Moment,
        rate_scale: float,
        rng: Random,
        effect: Effect,
        out: list[tuple[int, Event]],
    ) -> None:
        if effect.heartbeats:
            self._heartbeats(camera, start_ms, end_ms, rng, effect, out)
        demand = demand_level(camera.demand, moment)
        per_ms = flow_level(demand) * camera.demand.peak_per_s * rate_scale * effect.flow / 1000
        if per_ms <= 0 or not effect.passages:
            return
        classes = class_table(moment.night, moment.leisure and camera.beach)
        slowdown = speed_factor(demand) * effect.speed
        at = start_ms + rng.expovariate(per_ms)
        while at < end_ms:
            self._passage(camera, int(at), moment, classes, slowdown, rng, effect, out)
            at += rng.expovariate(per_ms)

    def _passage(
        self,
        camera: _Camera,
        ts_ms: int,
        moment: Moment,
        classes: Table[VehicleClass],
        slowdown: float,
        rng: Random,
        effect: Effect,
        out: list[tuple[int, Event]],
    ) -> None:
        mix = camera.mix
        vehicle_class = classes.pick(rng.random())
        offence = None
        if rng.random() < mix.violation_share * effect.violations:
            offence = mix.violations[vehicle_class].pick(rng.random())
        low, high = mix.speeds[vehicle_class]
        speed = (low + (high - low) * rng.random()) * slowdown
        if offence == "speeding":
            speed = mix.speed_limit + 5 + 30 * rng.random()
        plate_read = VIOLATION_PLATE_READS if offence else mix.plate_reads[vehicle_class]
        plate = plate_for(vehicle_class, rng) if rng.random() < plate_read else None
        ts = self._ts(ts_ms, rng)
        if effect.frozen:
            vehicle_class, speed = STUCK_CLASS, STUCK_SPEED_KMH
        passage: Event = {
            "event_id": self._event_id(rng),
            "camera_id": camera.camera_id,
            "ts": ts,
            "kind": "passage",
            "vehicle_class": vehicle_class,
        }
        if mix.reports_lane:
            inbound = rng.random() < moment.inbound_share
            passage["lane"] = _lane(camera.lanes, inbound, rng.random())
            passage["direction"] = "inbound" if inbound else "outbound"
        if mix.reports_speed:
            passage["speed_kmh"] = round(speed, 1)
        if plate is not None:
            passage["plate"] = plate
        out.append((ts_ms, passage))
        if offence is None:
            return
        violation: Event = {
            "event_id": self._event_id(rng),
            "camera_id": camera.camera_id,
            "ts": ts,
            "kind": "violation",
            "vehicle_class": vehicle_class,
            "violation_type": offence,
        }
        if mix.reports_speed:
            violation["speed_kmh"] = 0.0 if offence in STANDING else round(speed, 1)
        if plate is not None:
            violation["plate"] = plate
        out.append((ts_ms, violation))

    def _heartbeats(
        self,
        camera: _Camera,
        start_ms: int,
        end_ms: int,
        rng: Random,
        effect: Effect,
        out: list[tuple[int, Event]],
    ) -> None:
        # Each camera reports on its own second of every minute, whatever the window.
        at = start_ms + (camera.demand.phase_ms - start_ms) % HEARTBEAT_MS
        while at < end_ms:
            status = STATUS_TABLE.pick(rng.random())
            heartbeat: Event = {"event_id": self._event_id(rng), "camera_id": camera.camera_id}
            heartbeat.update(ts=self._ts(at, rng), kind="status", status=effect.status or status)
            out.append((at, heartbeat))
            at += HEARTBEAT_MS

    @staticmethod
    def _event_id(rng: Random) -> str:
        # 128 random bits from the seed, as 32 hex digits: unique without a counter to keep.
        return f"{rng.getrandbits(128):032x}"

    def _ts(self, ts_ms: int, rng: Random) -> str | int:
        if rng.random() < EPOCH_MS_SHARE:
            return ts_ms
        seconds, millis = divmod(ts_ms, 1000)
        prefix = self._seconds.get(seconds)
        if prefix is None:
            # A step spans at most 60 distinct seconds: format each once.
            prefix = datetime.fromtimestamp(seconds, self._offset).strftime("%Y-%m-%dT%H:%M:%S")
            self._seconds[seconds] = prefix
        return f"{prefix}.{millis:03d}{self._suffix}"


def _offset_text(offset: timedelta) -> str:
    """RFC 3339's numeric offset: +07:00."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _lane(lanes: int, inbound: bool, u: float) -> int:
    """Lanes 1..ceil(n/2) carry inbound traffic, the rest outbound; a 1-lane road carries both."""
    inbound_lanes = (lanes + 1) // 2
    if inbound or lanes == inbound_lanes:
        return 1 + int(u * inbound_lanes)
    return inbound_lanes + 1 + int(u * (lanes - inbound_lanes))


def camera_events(
    profile: CityProfile,
    window_start_ms: int,
    window_end_ms: int,
    rng: Random,
    rate_scale: float = 1.0,
    *,
    holiday: bool = False,
    incidents: Sequence[Incident] = (),
) -> Iterator[Event]:
    """camera.events of every camera for city time [window_start_ms, window_end_ms), in time
    order; `rate_scale` multiplies passages and violations (not heartbeats)."""
    source = CameraTraffic(profile, rng, holiday=holiday, incidents=incidents)
    for _, event in source.timed_events(window_start_ms, window_end_ms, rate_scale):
        yield event
