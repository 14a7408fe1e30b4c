"""portal.transactions: dossiers of the city's procedures, from submission to result.

Pure: no I/O, no wall clock; the same profile, window and seed give the same steps. Citizens
submit dossiers as a Poisson process that follows office hours (a light Saturday morning, a
lunch dip, an online trickle at night and on Sundays and holidays). Each dossier's later steps
are planned when it is submitted, kept in a queue, and come out when city time reaches them:
accepted (with the legal deadline from the procedure's `legal_days`), sometimes a supplement
request (with a new deadline), then resolved, rejected or withdrawn, in office hours.

Calibrated to the article: 97.63% of dossiers go through the electronic one-stop system
(online), none on paper on Fridays (pilot), VNeID level 2 for 99.17% of online users, 99.85%
resolved on time, results digitally signed; and a share paid online.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from random import Random

from city.profile import CityProfile, Procedure
from city.topics import PORTAL_TRANSACTIONS
from schemas.portal import Auth, Channel, DossierStatus
from simulator.demand import Curve, level_at
from simulator.mix import Table
from simulator.office import DayKind, day_kind, deadline, is_open, next_open
from simulator.sources import Load, SimEvent
from simulator.timestamps import event_time

STEP_MS = 60_000
HOUR_MS = 3_600_000
# Submissions per city minute, city-wide: about 530 dossiers on a weekday, 2,900 a week.
SUBMISSIONS: dict[DayKind, Curve] = {
    "weekday": ((0, 0.02), (6, 0.02), (7, 0.15), (7.5, 0.95), (11.5, 0.95), (11.6, 0.3),
                (13.4, 0.3), (13.5, 0.95), (17, 0.95), (17.1, 0.15), (22, 0.08), (24, 0.02)),
    "saturday": ((0, 0.02), (7, 0.05), (7.5, 0.3), (11.5, 0.3), (11.6, 0.08), (22, 0.05),
                 (24, 0.02)),
    "sunday": ((0, 0.02), (8, 0.06), (21, 0.06), (24, 0.02)),
}  # fmt: skip
# Channels of a dossier submitted while the office is open; when it is closed, and on
# Fridays (no paper dossiers, pilot), everything comes online.
OFFICE_CHANNELS: Table[Channel] = Table({"online": 95.95, "counter": 3.6, "postal": 0.45})
ONLINE_AUTH: Table[Auth] = Table({"vneid_l2": 99.17, "vneid_l1": 0.5, "portal_account": 0.33})
FULLY_ONLINE = 0.93  # of online dossiers of a `full` procedure: result received online too
PAID_ONLINE = 0.85  # of online dossiers of a procedure with a fee
ON_TIME = 0.9985
SUPPLEMENT = 0.04
OUTCOMES: Table[DossierStatus] = Table({"resolved": 96.5, "rejected": 2.5, "withdrawn": 1.0})
SIGNED = 0.999
# Resolutions that repeat the deadline; the others leave it to the dossier's earlier steps.
RESOLUTION_REPEATS_DUE = 0.2

Step = tuple[int, int, dict[str, object]]  # (ts ms, sequence, event)


def has_fee(procedure: Procedure) -> bool:
    """About half of the procedures charge a fee (fixed per procedure code)."""
    return zlib.crc32(procedure.procedure_code.encode()) % 2 == 0


class DossierSteps:
    """The portal.transactions source (see sources.EventSource) of every procedure."""

    topic = PORTAL_TRANSACTIONS

    def __init__(self, profile: CityProfile, rng: Random, *, holiday: bool = False) -> None:
        self._rng = rng
        self._tz = profile.tz
        self._holiday = holiday
        ward_agencies = [a.agency for a in profile.agencies if a.level == "ward"]
        # (procedure, its agencies): a ward procedure is handled by every ward's committee.
        self._offices = [(p, [p.agency] if p.agency else ward_agencies) for p in profile.procedures]
        self._queue: list[Step] = []
        self._sequence = 0
        self._generated_to: int | None = None

    def _kind(self, at_ms: int) -> DayKind:
        kind = day_kind(datetime.fromtimestamp(at_ms / 1000, self._tz), self._holiday)
        return "weekday" if kind == "friday" else kind

    def submissions_per_minute(self, at_ms: int) -> float:
        local = datetime.fromtimestamp(at_ms / 1000, self._tz)
        return level_at(SUBMISSIONS[self._kind(at_ms)], local.hour + local.minute / 60)

    def natural_load(self, start_ms: int, end_ms: int) -> Load:
        """About three steps per dossier submitted, whatever the rate scale."""
        span = max(end_ms - start_ms, 1)
        step = max(STEP_MS, span // 1_440)
        total = sum(
            self.submissions_per_minute(at) * min(step, end_ms - at)
            for at in range(start_ms, start_ms + span, step)
        )
        return Load(scaled=0.0, fixed=3.1 * total / span / 60)

    def events(self, start_ms: int, end_ms: int, rate_scale: float) -> Iterator[SimEvent]:
        at = start_ms if self._generated_to is None else max(start_ms, self._generated_to)
        while at < end_ms:
            step_end = min(end_ms, (at // STEP_MS + 1) * STEP_MS)
            self._submit(at, step_end)
            at = step_end
        self._generated_to = max(end_ms, self._generated_to or end_ms)
        while self._queue and self._queue[0][0] < end_ms:
            ts_ms, _, event = heapq.heappop(self._queue)
            if ts_ms >= start_ms:
                yield SimEvent(
                    PORTAL_TRANSACTIONS,
                    str(event["dossier_id"]),
                    event,
                    str(event["status"]),
                    ts_ms,
                )

    def _submit(self, start_ms: int, end_ms: int) -> None:
        rng = self._rng
        per_ms = self.submissions_per_minute(start_ms) / STEP_MS
        if per_ms <= 0:
            return
        at = start_ms + rng.expovariate(per_ms)
        while at < end_ms:
            procedure, agencies = self._offices[int(rng.random() * len(self._offices))]
            self._dossier(int(at), procedure, agencies[int(rng.random() * len(agencies))])
            at += rng.expovariate(per_ms)

    def _channel(self, ts_ms: int) -> Channel:
        local = datetime.fromtimestamp(ts_ms / 1000, self._tz)
        paper_day = day_kind(local, self._holiday) not in ("friday", "sunday")
        if paper_day and is_open(local):
            return OFFICE_CHANNELS.pick(self._rng.random())
        return "online"

    def _dossier(self, ts_ms: int, procedure: Procedure, agency: str) -> None:
        rng = self._rng
        dossier_id = f"HS-{rng.getrandbits(48):012x}"
        channel = self._channel(ts_ms)
        submitted: dict[str, object] = {"channel": channel}
        if channel == "online":
            full = procedure.service_level == "full" and rng.random() < FULLY_ONLINE
            submitted["service_level"] = "full" if full else "partial"
            submitted["auth"] = ONLINE_AUTH.pick(rng.random())
            submitted["paid_online"] = has_fee(procedure) and rng.random() < PAID_ONLINE
        else:
            submitted["auth"] = "none"
        common = {
            "dossier_id": dossier_id,
            "procedure_code": procedure.procedure_code,
            "agency": agency,
        }
        self._plan(ts_ms, "submitted", common, submitted)
        # Counter dossiers are received on the spot; online ones when an official opens them.
        received = (
            ts_ms + 1
            if channel == "counter"
            else next_open(ts_ms + int(rng.uniform(5, 120) * 60_000), self._tz)
        )
        due = deadline(received, procedure.legal_days, self._tz)
        self._plan(received, "accepted", common, {"due_at": event_time(due, self._tz, rng)})
        worked_from = received
        if rng.random() < SUPPLEMENT:
            asked = self._during(received, due, rng.uniform(0.1, 0.5))
            due = deadline(asked + 24 * HOUR_MS, procedure.legal_days, self._tz)
            self._plan(
                asked, "supplement_requested", common, {"due_at": event_time(due, self._tz, rng)}
            )
            worked_from = asked + 24 * HOUR_MS
        outcome = OUTCOMES.pick(rng.random())
        if rng.random() < ON_TIME or outcome != "resolved":
            done = self._during(worked_from, due, rng.uniform(0.15, 0.95))
        else:
            done = next_open(due + int(rng.uniform(1, 48) * HOUR_MS), self._tz)
        extra: dict[str, object] = {}
        if outcome == "resolved":
            extra["signed"] = rng.random() < SIGNED
            if rng.random() < RESOLUTION_REPEATS_DUE:
                extra["due_at"] = event_time(due, self._tz, rng)
        self._plan(done, outcome, common, extra)

    def _during(self, start_ms: int, due_ms: int, share: float) -> int:
        """An office-hours instant `share` of the way from start to the deadline. The next
        opening after an instant before a deadline (closing time of a working day) is still
        before it."""
        return min(due_ms, next_open(start_ms + int(share * max(0, due_ms - start_ms)), self._tz))

    def _plan(
        self,
        ts_ms: int,
        status: DossierStatus,
        common: Mapping[str, object],
        fields: dict[str, object],
    ) -> None:
        rng = self._rng
        event: dict[str, object] = {
            "event_id": f"{rng.getrandbits(128):032x}",
            **common,
            "ts": event_time(ts_ms, self._tz, rng),
            "status": status,
            **fields,
        }
        self._sequence += 1
        heapq.heappush(self._queue, (ts_ms, self._sequence, event))
