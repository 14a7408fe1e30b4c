"""Dossier steps for tests, and an independent model of what the contract says they produce."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.pipeline import InputStreamTimes

HO_CHI_MINH = ZoneInfo("Asia/Ho_Chi_Minh")
GRACE_MS = 172_800_000
COLUMNS = (
    "submitted",
    "submitted_online",
    "submitted_full_online",
    "submitted_vneid_l2",
    "paid_online",
    "resolved",
    "resolved_signed",
    "resolved_on_time",
    "resolved_no_due",
    "rejected",
)


def at(text: str) -> int:
    """Epoch ms of an RFC 3339 time with an offset."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def step(
    event_id: str,
    dossier_id: str,
    ts: int | str,
    status: str,
    *,
    agency: str = "ubnd-phuong-1",
    procedure_code: str = "1.001193",
    **fields: Any,
) -> dict[str, Any]:
    event = {
        "event_id": event_id,
        "dossier_id": dossier_id,
        "procedure_code": procedure_code,
        "agency": agency,
        "ts": ts,
        "status": status,
        **fields,
    }
    if status == "submitted":
        event.setdefault("channel", "online")
    return event


def _ms(value: int | str) -> int:
    return value if isinstance(value, int) else at(value)


def _local_day(ts_ms: int) -> tuple[date, int]:
    """The local day holding ts and the epoch ms at which it ends."""
    day = datetime.fromtimestamp(ts_ms / 1000, HO_CHI_MINH).date()
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), HO_CHI_MINH)
    return day, int(end.timestamp() * 1000)


@dataclass
class ExpectedPortal:
    """Contract sections 5 and 7 applied naively, step by step, in the order each input
    partition (the dossier's) holds them: lateness by that partition's stream time, before
    dedup; a window is final once every input partition has passed its end plus grace.
    Dossier deadlines: every processed step that carried one, late or not."""

    partitions: int
    windows: dict[tuple[date, str, str], dict[str, int]] = field(default_factory=dict)
    late: int = 0
    duplicates: int = 0
    _accepted: set[str] = field(default_factory=set)
    _ends: dict[date, int] = field(default_factory=dict)
    _deadlines: defaultdict[str, list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _clock: InputStreamTimes = field(init=False)

    def __post_init__(self) -> None:
        self._clock = InputStreamTimes(self.partitions, GRACE_MS // 2)

    def add(self, event: dict[str, Any]) -> None:
        ts = _ms(event["ts"])
        now = self._clock.advance(event["dossier_id"], ts)
        duplicate = event["event_id"] in self._accepted
        day, end = _local_day(ts)
        late = end + GRACE_MS <= now
        if duplicate and not late:
            self.duplicates += 1
            return
        due_at = None if event.get("due_at") is None else _ms(event["due_at"])
        self._ends[day] = end
        deadlines = self._deadlines[event["dossier_id"]]
        if due_at is None:
            earlier = [d for d in deadlines if d[0] <= ts]
            due_at = max(earlier)[1] if earlier else None
        else:
            deadlines.append((ts, due_at))
        if late:
            self.late += 1
            return
        self._accepted.add(event["event_id"])
        row = self.windows.setdefault(
            (day, event["agency"], event["procedure_code"]), dict.fromkeys(COLUMNS, 0)
        )
        status = event["status"]
        if status == "submitted":
            row["submitted"] += 1
            online = event["channel"] == "online"
            row["submitted_online"] += online
            row["submitted_full_online"] += online and event.get("service_level") == "full"
            row["submitted_vneid_l2"] += event.get("auth") == "vneid_l2"
            row["paid_online"] += event.get("paid_online") is True
        elif status == "resolved":
            row["resolved"] += 1
            row["resolved_signed"] += event.get("signed") is True
            row["resolved_no_due"] += due_at is None
            row["resolved_on_time"] += due_at is not None and ts <= due_at
        elif status == "rejected":
            row["rejected"] += 1

    def add_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.add(event)

    def rows(self) -> dict[tuple[date, str, str], tuple[int, ...]]:
        """(day, agency, procedure) → (the ten counts, final)."""
        return {
            (day, agency, procedure): (
                *(row[c] for c in COLUMNS),
                int(self._clock.passed(self._ends[day] + GRACE_MS)),
            )
            for (day, agency, procedure), row in self.windows.items()
        }


def random_dossiers(
    rng: random.Random, count: int, start_ms: int, span_ms: int
) -> list[dict[str, Any]]:
    """`count` dossiers submitted in [start_ms, start_ms + span_ms), each with its steps in
    time order within a day of the submission; steps of all dossiers interleaved by time."""
    agencies = ["ubnd-phuong-1", "ubnd-thang-tam", "phong-tu-phap", "ubnd-long-son"]
    procedures = ["1.001193", "2.000908", "1.004884"]
    events: list[tuple[int, dict[str, Any]]] = []
    for n in range(count):
        dossier, agency, procedure = f"D{n}", rng.choice(agencies), rng.choice(procedures)
        ts = start_ms + rng.randrange(span_ms)
        common = {"agency": agency, "procedure_code": procedure}
        events.append(
            (
                ts,
                step(
                    f"{dossier}-s",
                    dossier,
                    ts,
                    "submitted",
                    **common,
                    channel=rng.choice(["online", "online", "counter", "postal"]),
                    service_level=rng.choice(["full", "partial"]),
                    auth=rng.choice(["vneid_l2", "vneid_l1", "none"]),
                    paid_online=rng.random() < 0.4,
                ),
            )
        )
        due = ts + rng.randint(1, 20) * 3_600_000
        ts += rng.randint(1, 3_600_000)
        events.append((ts, step(f"{dossier}-a", dossier, ts, "accepted", **common, due_at=due)))
        ts += rng.randint(1, 20 * 3_600_000)
        final = rng.choice(["resolved", "resolved", "resolved", "rejected", "withdrawn"])
        extra: dict[str, Any] = {"signed": rng.random() < 0.9} if final == "resolved" else {}
        events.append((ts, step(f"{dossier}-f", dossier, ts, final, **common, **extra)))
    events.sort(key=lambda pair: pair[0])
    out: list[dict[str, Any]] = []
    for _, event in events:
        out.append(event)
        if rng.random() < 0.05:
            out.append(dict(event))
    return out
