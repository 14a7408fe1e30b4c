"""What a domain stream tells the runtime: how to read its topic and what its windows produce.

The runtime (streams/runtime.py) owns Kafka, checkpoints and sinks; a domain stream
(traffic, payments, portal) is pure logic behind this protocol, so unit tests drive it directly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from streams.windows import PartitionWindows, Window, WindowKey

A = TypeVar("A")

Row = dict[str, Any]


@dataclass
class Records:
    """Rows a stream emits besides its windows (violations, camera status), by table."""

    by_table: defaultdict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))

    def add(self, table: str, row: Row) -> None:
        self.by_table[table].append(row)

    def drain(self) -> dict[str, list[Row]]:
        drained, self.by_table = dict(self.by_table), defaultdict(list)
        return drained


class WindowedStream(Protocol[A]):
    name: str
    source_topic: str
    output_topic: str
    output_key: str  # the window row field that keys the output topic
    window_table: str

    def new_state(self) -> PartitionWindows[A]: ...

    def process(
        self, state: PartitionWindows[A], offset: int, raw: bytes | None, records: Records
    ) -> None:
        """Fold one message into the state; InvalidEvent for one that breaks the contract."""

    def window_of(self, raw: bytes | None) -> tuple[str, WindowKey] | None:
        """(event_id, window key) of a valid windowed message, for re-learning dedup on restore."""

    def window_row(self, window: Window[A], final: bool) -> Row:
        """The window's row for ClickHouse and the output topic, without `version`."""

    def acc_to_state(self, acc: A) -> dict[str, Any]: ...

    def acc_from_state(self, state: dict[str, Any]) -> A: ...
