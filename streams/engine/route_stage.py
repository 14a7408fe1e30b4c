"""The routing stage: re-keys a contract topic by window group, for streams whose windows span
input partitions.

payments.terminal-counts is keyed by terminal and portal.transactions by dossier (contract
section 3), but their windows group by (ward, category) and (agency, procedure_code): tallies
of one window arrive on every partition. So these streams run in two stages, as Faust's
`group_by` does: this stage validates each message (dead letters go out here, naming the
contract topic, partition and offset) and forwards the original value to the internal topic
`<prefix><app id>.<stream>.by-group`, to the partition its window group's key hashes to (as
the producer's partitioner would put it); a window stage reads that topic. A checkpoint sends
an input partition's forwards to one re-key partition as one record (streams/engine/records.py).

Lateness stays with the input partition (contract section 5): each forward carries its input
partition, offset and that partition's stream time, and every
checkpoint sends each partition of the re-key topic a watermark with the stream times of the
input partitions this router owns. An input partition that is caught up (nothing left to read)
and has received nothing for `idle_partition_s` is announced idle and stops holding windows
back; its next event makes it busy again.

This stage's commit record is its meta entry in `stream_state` (offset, stream time, counters),
written in the checkpoint's one insert after the forwards are on every replica.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.partitioner import murmur2

from sinks.base import Row
from streams.engine.checkpoint import (
    Cut,
    HighWater,
    PartitionProgress,
    StageSinks,
    Step,
    lag_of,
)
from streams.engine.dead_letters import DeadLetters
from streams.engine.definition import DomainStream, route_key
from streams.engine.lead import Leaders, lead_of
from streams.engine.partition_stage import PartitionStage
from streams.engine.record_batches import refuse_unreadable
from streams.engine.records import (
    Forward,
    forward_records,
    forwards_header,
    origin_header,
    watermark_header,
    watermark_value,
)
from streams.engine.skew import reject_far_future
from streams.engine.state_store import META_KEY, StateStore, entry
from streams.engine.windows import Group

log = logging.getLogger(__name__)


@dataclass
class _Input:
    """One input partition as this router holds it."""

    offset: int = -1  # last message forwarded or dead-lettered
    # The largest event time, one producer's lead over the others bounded.
    stream_time_ms: int | None = None
    invalid: int = 0
    leaders: Leaders = field(default_factory=Leaders)
    ahead: int = 0  # events whose producer ran ahead of the bound (streams/engine/lead.py)
    # Since the assignment, for /metrics only: the state keeps the invalid count alone.
    read: int = 0
    forwarded: int = 0
    received_at: float = field(default_factory=time.monotonic)
    announced: tuple[int | None, bool] | None = None  # (stream time, idle) last sent
    touched: bool = True

    def to_state(self) -> dict[str, Any]:
        """The router's meta entry of the partition: all it keeps across restarts."""
        return {
            "offset": self.offset,
            "stream_time": self.stream_time_ms,
            "invalid": self.invalid,
            "leaders": self.leaders.to_state(),
            "ahead": self.ahead,
        }

    @classmethod
    def from_state(cls, meta: dict[str, Any]) -> _Input:
        """From `to_state`; a state saved before the lead bound has no leaders."""
        return cls(
            meta["offset"],
            meta["stream_time"],
            meta["invalid"],
            Leaders.from_state(meta.get("leaders")),
            meta.get("ahead", 0),
        )


class RouteStage(PartitionStage[_Input]):
    def __init__(
        self,
        stream: DomainStream[Any, Any],
        topic: str,
        by_group_topic: str,
        sinks: StageSinks,
        store: StateStore,
        max_clock_skew_s: int,
        idle_partition_s: float,
        highwater: HighWater,
        partitions_of: Callable[[str], int | None],
    ) -> None:
        super().__init__(topic, highwater)
        self.stream = stream
        self.by_group_topic = by_group_topic
        self._sinks = sinks
        self._store = store
        self._max_skew_ms = max_clock_skew_s * 1000
        self._idle_s = idle_partition_s
        self._partitions_of = partitions_of
        # Half the grace of the windows this router feeds (streams/engine/lead.py).
        self._lead_ms = lead_of(stream.new_state().grace_ms)
        # Per input partition and window group, since the last checkpoint, in input order.
        self._forwards: dict[int, dict[Group, list[Forward]]] = {}
        self._group_partitions: dict[Group, int] = {}  # window group -> its re-key partition
        self._group_partition_count = 0
        self._dead_letters = DeadLetters(topic, sinks.tables["dlq_events"], sinks.dead_letter_topic)

    async def assign(self, partition: int) -> int | None:
        meta = (await self._store.load(self.topic, partition)).get(META_KEY)
        held = _Input() if meta is None else _Input.from_state(meta)
        self._hold(partition, held)
        log.info("assigned topic=%s partition=%d offset=%d", self.topic, partition, held.offset)
        return None if meta is None else held.offset + 1

    def fold(self, partition: int, records: Sequence[ConsumerRecord]) -> None:
        held = self._held(partition)
        if held is None:
            return
        held.received_at = time.monotonic()
        held.touched = True
        latest_ms = int(time.time() * 1000) + self._max_skew_ms
        stream = self.stream
        by_group = self._forwards.setdefault(partition, {})
        for record in records:
            offset = record.offset
            if offset <= held.offset:
                continue
            held.offset = offset
            held.read += 1
            try:
                refuse_unreadable(record)
                event = stream.decode(record.value)
                reject_far_future(stream, event, latest_ms)
                assignment = stream.assign(event)
                if assignment is None:
                    continue
            except Exception as error:
                held.invalid += 1
                self._dead_letters.add(partition, record, error)
                continue
            moved_to = assignment.event_time_ms
            if assignment.producer is not None:
                allowed = held.leaders.allow(assignment.producer, moved_to, self._lead_ms)
                if allowed < moved_to:
                    held.ahead += 1
                moved_to = allowed
            if held.stream_time_ms is None or moved_to > held.stream_time_ms:
                held.stream_time_ms = moved_to
            held.forwarded += 1
            forwards = by_group.get(assignment.group)
            if forwards is None:
                forwards = by_group[assignment.group] = []
            forwards.append((offset, held.stream_time_ms, record.value))

    def _forward_rows(self) -> list[Row]:
        """The forwards since the last checkpoint: a record of them per input partition and
        re-key partition. Without the re-key topic's partition count (no metadata yet; the
        offline rebuild, which sends nothing) a record per forward, keyed by its group, which
        the producer places."""
        pending, self._forwards = self._forwards, {}
        outputs = self._partitions_of(self.by_group_topic)
        rows: list[Row] = []
        for partition, by_group in pending.items():
            if outputs is None:
                keyed = [(f, route_key(g).encode()) for g, fs in by_group.items() for f in fs]
                rows += [
                    {"key": key, "value": v, "headers": origin_header(partition, o, t)}
                    for (o, t, v), key in sorted(keyed)
                ]
                continue
            by_output: dict[int, list[list[Forward]]] = {}
            for group, forwards in by_group.items():
                by_output.setdefault(self._partition_of(group, outputs), []).append(forwards)
            headers = forwards_header(partition)
            for to, lists in sorted(by_output.items()):
                # Each group's forwards are in input order, and so must the record's be.
                merged = lists[0] if len(lists) == 1 else sorted(chain.from_iterable(lists))
                rows += [
                    {"key": None, "value": value, "partition": to, "headers": headers}
                    for value in forward_records(merged)
                ]
        return rows

    def _partition_of(self, group: Group, partitions: int) -> int:
        """Where the producer's partitioner (aiokafka's default, murmur2 as the Java client)
        puts the group's key: records of the one-per-forward format, still in retained topics,
        sit there, and a window group's forwards must all reach one window stage partition."""
        if partitions != self._group_partition_count:
            self._group_partitions, self._group_partition_count = {}, partitions
        found = self._group_partitions.get(group)
        if found is None:
            found = (murmur2(route_key(group).encode()) & 0x7FFFFFFF) % partitions
            self._group_partitions[group] = found
        return found

    def _idle(self, partition: int, held: _Input) -> bool:
        caught_up = lag_of(self._highwater(self.topic, partition), held.offset) == 0
        return caught_up and time.monotonic() - held.received_at >= self._idle_s

    def _watermarks(self) -> list[Row]:
        """A watermark for every re-key partition when any input clock changed since the last."""
        clocks = {p: (held.stream_time_ms, self._idle(p, held)) for p, held in self._states.items()}
        if all(held.announced == clocks[p] for p, held in self._states.items()):
            return []
        inputs, outputs = self._partitions_of(self.topic), self._partitions_of(self.by_group_topic)
        if inputs is None or outputs is None:
            return []  # no metadata yet: the next checkpoint announces them
        for p, held in self._states.items():
            held.announced = clocks[p]
        value = watermark_value(inputs, clocks)
        return [
            {"key": None, "value": value, "partition": p, "headers": watermark_header()}
            for p in range(outputs)
        ]

    def _progress(self, partition: int, held: _Input) -> PartitionProgress:
        # A message counts as an event where its journey ends: here for a dead letter, in
        # the window stage otherwise (with accepted, duplicate and late events), so that
        # totals over every source topic count each message once.
        counters = {"events": held.invalid, "accepted": 0, "duplicates": 0, "late": 0}
        return PartitionProgress(
            self.stream.name,
            self.topic,
            partition,
            held.offset,
            held.stream_time_ms,
            {**counters, "invalid": held.invalid},
            0,
            self._tally.counted(partition, self._counted(held)),
        )

    def _counted(self, held: _Input) -> dict[str, int]:
        # Every message read is forwarded or dead-lettered (a contract topic has no records).
        return {
            "events": held.read,
            "forwarded": held.forwarded,
            "invalid": held.invalid,
            "ahead": held.ahead,
        }

    def cut(self, cut: Cut, last_checkpoint_ms: float) -> None:
        cut.write(Step.TOPICS, self._sinks.output_topic, self._forward_rows() + self._watermarks())
        self._dead_letters.cut(cut)
        tables = self._sinks.tables
        progress: list[Row] = []
        for partition, held in self._states.items():
            if not held.touched:
                continue
            held.touched = False
            cut.state.append(entry(self.topic, partition, META_KEY, held.offset, held.to_state()))
            progress.append(self._checkpointed(cut, partition, held, last_checkpoint_ms))
        cut.write(Step.PROGRESS, tables["pipeline_progress"], progress)
