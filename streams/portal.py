"""Online public services: dossier steps into local-day KPI windows per agency and procedure.

Contract: section 4 (portal.transactions), section 5 (windows), section 7 (`portal_kpis_1d`).
Windows are local days in the city profile's time zone by the event's `ts` (23 or 25 hours
where clocks change); every valid step folds into its day's window (accepted,
supplement_requested and withdrawn count nothing, but they are deduplicated and judged late
like the others).

A resolution is on time when `ts <= due_at`. Its `due_at` is its own, or else the one of the
latest event of the same dossier, among those already processed, whose `ts` is not after the
resolution's (ties: the later deadline). Those deadlines are per-dossier keyed state. A late
event still teaches its dossier's deadline: a deadline is a fact about the dossier, not an
aggregate of the closed window.

The input is keyed by dossier; the stream is re-keyed by (agency, procedure_code) first
(streams/engine/route_stage.py), so a dossier's state lives with its group: the steps of a dossier
that name different agencies or procedures do not share deadlines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from city import topics
from city.clock import LocalDays, local_time
from city.profile import CityProfile
from schemas.exceptions import InvalidEvent
from schemas.fast import PortalTransaction, decode_portal_transaction
from streams.engine.definition import NO_RECORD_TOPICS, Assignment, Records, Row
from streams.engine.windows import Group, PartitionWindows, Window

log = logging.getLogger(__name__)

KPIS_TABLE = "portal_kpis_1d"
DAY_MS = 86_400_000
# A dossier's state is dropped once stream time is this far past its last event, so that
# state does not grow forever. A city profile allows legal deadlines of up to 90 working days
# (about 126 calendar days, Vũng Tàu's longest is 15); 180 days outlasts any of them with a
# supplement on top. A step arriving after a longer silence is treated as a new dossier's: its
# resolution counts as `resolved_no_due` unless it carries its own due_at.
DOSSIER_RETENTION_MS = 180 * DAY_MS
# Deadlines kept per dossier (a supplement request may set a new one); beyond this many, the
# earliest are forgotten.
MAX_DEADLINES = 32
DOSSIER_PREFIX = "dossier:"
# Dossiers with a deadline a window-stage partition keeps (issue 16, 5): the profile cannot know
# dossier ids, so this bounds memory. Vũng Tàu resolves a few hundred thousand a year; over
# six partitions and 180 days, a tenth of this each. Beyond it, the stalest tenth is forgotten.
MAX_DOSSIERS = 100_000


@dataclass
class PortalCounts:
    """One day, agency and procedure: the columns of portal_kpis_1d."""

    submitted: int = 0
    submitted_online: int = 0
    submitted_full_online: int = 0
    submitted_vneid_l2: int = 0
    paid_online: int = 0
    resolved: int = 0
    resolved_signed: int = 0
    resolved_on_time: int = 0
    resolved_no_due: int = 0
    rejected: int = 0

    def add(self, event: PortalTransaction, due_at: int | None) -> None:
        """Count one step; `due_at` is the resolution's deadline as the dossier knows it."""
        if event.status == "submitted":
            self.submitted += 1
            if event.channel == "online":
                self.submitted_online += 1
                if event.service_level == "full":
                    self.submitted_full_online += 1
            # Any channel: the contract's "… and auth vneid_l2" hangs off `submitted` alone.
            self.submitted_vneid_l2 += int(event.auth == "vneid_l2")
            self.paid_online += int(event.paid_online is True)
        elif event.status == "resolved":
            self.resolved += 1
            self.resolved_signed += int(event.signed is True)
            if due_at is None:
                self.resolved_no_due += 1
            elif event.ts <= due_at:
                self.resolved_on_time += 1
        elif event.status == "rejected":
            self.rejected += 1


def _expired(dossier: dict[str, Any], stream_time_ms: int) -> bool:
    return bool(dossier["last_ts"] + DOSSIER_RETENTION_MS < stream_time_ms)


def deadline_at(dossier: dict[str, Any] | None, ts_ms: int) -> int | None:
    """The due_at of the dossier's latest deadline-carrying event with ts <= `ts_ms`."""
    if dossier is None:
        return None
    known = [due for at, due in dossier["deadlines"] if at <= ts_ms]
    return known[-1] if known else None


class PortalKpis:
    name = "portal"
    source_topic = topics.PORTAL_TRANSACTIONS
    output_topic = topics.PORTAL_KPIS_1D
    output_key = "agency"
    window_table = KPIS_TABLE
    event_time_field = "ts"
    rekeyed = True
    key_field: str | None = None
    record_topics = NO_RECORD_TOPICS

    def __init__(self, profile: CityProfile, grace_s: int) -> None:
        self._grace_ms = grace_s * 1000
        self._tz = profile.tz
        self._days = LocalDays(profile.tz)
        self._agencies = frozenset(a.agency for a in profile.agencies)
        self._procedures = frozenset(p.procedure_code for p in profile.procedures)

    def new_state(self) -> PartitionWindows[PortalCounts]:
        return PartitionWindows(self._grace_ms, lambda _group: PortalCounts())

    def decode(self, raw: bytes | None) -> PortalTransaction:
        # The profile knows the city's agencies and procedures (issue 16, 5): anything else
        # would open windows, and keep dossiers, for groups nobody reads.
        step = decode_portal_transaction(raw)
        if step.agency not in self._agencies:
            raise InvalidEvent("agency: not an agency of the city profile")
        if step.procedure_code not in self._procedures:
            raise InvalidEvent("procedure_code: not a procedure of the city profile")
        return step

    def assign(self, event: PortalTransaction) -> Assignment:
        _, start, end = self._days.bounds(event.ts)
        return Assignment(
            event.event_id,
            (event.agency, event.procedure_code),
            start,
            end,
            event.ts,
            event.dossier_id,
        )

    def fold(
        self,
        state: PartitionWindows[PortalCounts],
        event: PortalTransaction,
        window: Window[PortalCounts] | None,
        records: Records,
    ) -> None:
        dossier = self._dossier(state, event.dossier_id)
        if window is not None:
            due_at = event.due_at if event.due_at is not None else deadline_at(dossier, event.ts)
            window.acc.add(event, due_at)
        self._remember(state, event, dossier)
        if state.stream_time_ms is not None and state.stream_time_ms // DAY_MS != state.swept_day:
            state.swept_day = state.stream_time_ms // DAY_MS
            self.sweep(state)

    @staticmethod
    def _dossier(state: PartitionWindows[PortalCounts], dossier_id: str) -> dict[str, Any] | None:
        """The dossier's state, or None when it has none or it has expired. Expiry is judged
        here as in `sweep`, so when the sweep runs never changes a result."""
        dossier: dict[str, Any] | None = state.keyed.get(DOSSIER_PREFIX + dossier_id)
        if dossier is None or state.stream_time_ms is None:
            return dossier
        return None if _expired(dossier, state.stream_time_ms) else dossier

    @staticmethod
    def _remember(
        state: PartitionWindows[PortalCounts],
        event: PortalTransaction,
        dossier: dict[str, Any] | None,
    ) -> None:
        deadlines: list[list[int]] = [] if dossier is None else dossier["deadlines"]
        last_ts = event.ts if dossier is None else max(dossier["last_ts"], event.ts)
        if event.due_at is not None and [event.ts, event.due_at] not in deadlines:
            # Sorted by (ts, due_at): the last one at or before an instant is "the latest".
            deadlines = sorted([*deadlines, [event.ts, event.due_at]])[-MAX_DEADLINES:]
        elif dossier is None or last_ts == dossier["last_ts"]:
            # Nothing new, or a dossier with no deadline yet: nothing a resolution could use.
            return
        state.put_keyed(
            DOSSIER_PREFIX + event.dossier_id, {"last_ts": last_ts, "deadlines": deadlines}
        )
        if len(state.keyed) > MAX_DOSSIERS:
            PortalKpis._forget_stalest(state)

    @staticmethod
    def _forget_stalest(state: PartitionWindows[PortalCounts]) -> None:
        """Keep memory bounded when dossiers are more than a partition keeps: forget the tenth
        whose last step is oldest (their resolutions then count as `resolved_no_due`)."""
        stalest = sorted(state.keyed, key=lambda key: state.keyed[key]["last_ts"])
        forgotten = stalest[: MAX_DOSSIERS // 10]
        for key in forgotten:
            state.drop_keyed(key)
        log.warning(
            "more dossiers than a partition keeps: forgot the stalest dossiers=%d limit=%d",
            len(forgotten),
            MAX_DOSSIERS,
        )

    @staticmethod
    def sweep(state: PartitionWindows[PortalCounts]) -> int:
        """Drop every dossier whose last event is older than the retention; called by `fold`
        when stream time enters a new (UTC) day, so its cost is paid once a day."""
        now = state.stream_time_ms
        if now is None:
            return 0
        expired = [
            key
            for key, dossier in state.keyed.items()
            if key.startswith(DOSSIER_PREFIX) and _expired(dossier, now)
        ]
        for key in expired:
            state.drop_keyed(key)
        return len(expired)

    def window_row(self, window: Window[PortalCounts], final: bool) -> Row:
        agency, procedure_code = window.group
        return {
            "day": local_time(window.start_ms, self._tz).date(),
            "agency": agency,
            "procedure_code": procedure_code,
            # Its fields are flat counts: vars is asdict without the deep copy (3 µs a row).
            **vars(window.acc),
            "final": int(final),
        }

    def acc_to_state(self, acc: PortalCounts) -> dict[str, Any]:
        return dict(vars(acc))

    def acc_from_state(self, _group: Group, state: dict[str, Any]) -> PortalCounts:
        return PortalCounts(**state)
