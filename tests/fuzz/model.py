"""An independent model of the contract (sections 5 to 7) for the fuzzer: from the messages in
the order each input partition holds them, the dead letters and the window rows the worker must
produce. Written from the contract, not from the engine's code.

- Stream time is per input partition: the largest event time there, except that one producer
  (camera, terminal, dossier) counts at most half the grace ahead of the most advanced other
  producer of the partition (the README's rule for contract v1.2; tests/stream_times.py).
- An event is late when its window's end plus grace is not after its input partition's stream
  time (this event included); late events count nothing.
- A copy of an event counts nothing: dedup is per input partition for the camera stream, per
  window group for the re-keyed ones (whose copies a router may put on another partition).
- Status reports are recorded, never windowed, and move no stream time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from city import topics
from tests.fuzz.messages import METHODS, Message
from tests.stream_times import InputClock

GRACE_MS = {
    topics.CAMERA_EVENTS: 120_000,
    topics.PAYMENT_COUNTS: 900_000,
    topics.PORTAL_TRANSACTIONS: 172_800_000,
}
MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
CITY_OFFSET_MS = 7 * HOUR_MS  # Asia/Ho_Chi_Minh has no daylight saving
TIME_FIELD = {
    topics.CAMERA_EVENTS: "ts",
    topics.PAYMENT_COUNTS: "period_start",
    topics.PORTAL_TRANSACTIONS: "ts",
}
# Whose lead over the partition's others is bounded (contract v1.2, section 5): the input's key.
PRODUCER_FIELD = {
    topics.CAMERA_EVENTS: "camera_id",
    topics.PAYMENT_COUNTS: "terminal_id",
    topics.PORTAL_TRANSACTIONS: "dossier_id",
}
# The columns of each window row the model knows (contract section 7).
COLUMNS = {
    topics.CAMERA_EVENTS: (
        "vehicles", "motorbike", "car", "bus", "truck", "bicycle", "other", "violations",
    ),
    topics.PAYMENT_COUNTS: ("reports", *METHODS, "cash_amount_vnd", "cashless_amount_vnd"),
    topics.PORTAL_TRANSACTIONS: (
        "submitted", "submitted_online", "submitted_full_online", "submitted_vneid_l2",
        "paid_online", "resolved", "resolved_signed", "rejected",
    ),
}  # fmt: skip


def _iso_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _local_day(ts_ms: int) -> tuple[str, int]:
    """(the local day in city time, as ISO text; its end, epoch ms)."""
    start = (ts_ms + CITY_OFFSET_MS) // DAY_MS * DAY_MS - CITY_OFFSET_MS
    day = (
        datetime.fromtimestamp(start / 1000, UTC) + timedelta(milliseconds=CITY_OFFSET_MS)
    ).date()
    return day.isoformat(), start + DAY_MS


@dataclass
class Model:
    clocks: dict[tuple[str, int], InputClock] = field(default_factory=dict)
    counted: dict[tuple[Any, ...], set[str]] = field(default_factory=lambda: defaultdict(set))
    windows: dict[str, dict[tuple[Any, ...], dict[str, int]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    # (contract topic, partition, offset) of every message that must be a dead letter.
    dead: dict[tuple[str, int, int], Message] = field(default_factory=dict)
    # The distinct terminals behind each payments window.
    terminals: dict[tuple[Any, ...], set[str]] = field(default_factory=lambda: defaultdict(set))
    late: int = 0
    duplicates: int = 0

    def add(self, message: Message, partition: int, offset: int) -> None:
        """One message, in its partition's order."""
        event = message.event
        if event is None:
            self.dead[(message.topic, partition, offset)] = message
            return
        if message.topic == topics.CAMERA_EVENTS and event["kind"] == "status":
            return
        clock = self.clocks.get((message.topic, partition))
        if clock is None:
            lead_ms = GRACE_MS[message.topic] // 2
            clock = self.clocks[(message.topic, partition)] = InputClock(lead_ms)
        ts = event[TIME_FIELD[message.topic]]
        now = clock.advance(str(event[PRODUCER_FIELD[message.topic]]), ts)
        key, end, grace = self._window(message.topic, event, ts)
        if end + grace <= now:
            self.late += 1
            return
        scope = (message.topic, partition) if message.topic == topics.CAMERA_EVENTS else key
        if event["event_id"] in self.counted[scope]:
            self.duplicates += 1
            return
        self.counted[scope].add(event["event_id"])
        self._fold(message.topic, key, event)

    @staticmethod
    def _window(topic: str, event: dict[str, Any], ts: int) -> tuple[tuple[Any, ...], int, int]:
        if topic == topics.CAMERA_EVENTS:
            start = ts - ts % MINUTE_MS
            return (event["camera_id"], start), start + MINUTE_MS, GRACE_MS[topic]
        if topic == topics.PAYMENT_COUNTS:
            start = ts - ts % HOUR_MS
            return (event["ward"], event["category"], start), start + HOUR_MS, GRACE_MS[topic]
        day, end = _local_day(ts)
        return (day, event["agency"], event["procedure_code"]), end, GRACE_MS[topic]

    def _fold(self, topic: str, key: tuple[Any, ...], event: dict[str, Any]) -> None:
        row = self.windows[topic].get(key)
        if row is None:
            row = self.windows[topic][key] = dict.fromkeys(COLUMNS[topic], 0)
        if topic == topics.CAMERA_EVENTS:
            if event["kind"] == "violation":
                row["violations"] += 1
            else:
                row["vehicles"] += 1
                row[event["vehicle_class"]] += 1
        elif topic == topics.PAYMENT_COUNTS:
            row["reports"] += 1
            self.terminals[key].add(event["terminal_id"])
            for method in METHODS:
                row[method] += event["counts"].get(method, 0)
            amounts = event.get("amounts_vnd") or {}
            row["cash_amount_vnd"] += amounts.get("cash", 0)
            row["cashless_amount_vnd"] += sum(amounts.get(m, 0) for m in METHODS[1:])
        else:
            status = event["status"]
            if status == "submitted":
                row["submitted"] += 1
                online = event.get("channel") == "online"
                row["submitted_online"] += int(online)
                row["submitted_full_online"] += int(online and event.get("service_level") == "full")
                row["submitted_vneid_l2"] += int(event.get("auth") == "vneid_l2")
                row["paid_online"] += int(event.get("paid_online") is True)
            elif status == "resolved":
                row["resolved"] += 1
                row["resolved_signed"] += int(event.get("signed") is True)
            elif status == "rejected":
                row["rejected"] += 1

    def expected_rows(self, topic: str) -> dict[tuple[Any, ...], dict[str, int]]:
        """Per window, the columns the model knows, as the output topic's latest row holds."""
        rows = {}
        for key, row in self.windows[topic].items():
            rows[key] = dict(row)
            if topic == topics.PAYMENT_COUNTS:
                rows[key]["terminals"] = len(self.terminals[key])
        return rows


def row_key(topic: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """The window an output row is of, as the model keys it (by contract input topic)."""
    if topic == topics.CAMERA_EVENTS:
        return (row["camera_id"], _iso_ms(row["window_start"]))
    if topic == topics.PAYMENT_COUNTS:
        return (row["ward"], row["category"], _iso_ms(row["window_start"]))
    return (row["day"], row["agency"], row["procedure_code"])


def compare(expected: dict[str, int], row: dict[str, Any]) -> dict[str, tuple[int, Any]]:
    """The columns where the row differs from the model: name -> (expected, found)."""
    return {
        name: (value, row.get(name)) for name, value in expected.items() if row.get(name) != value
    }
