"""The window stage: a domain stream's events into event-time windows, one partition at a time.

It reads either the stream's contract topic (camera events, keyed by camera, so one partition
owns each window) or the re-key topic its routing stage writes (streams/engine/route_stage.py),
whose records carry the stream time of the input partition they came from. A batch is folded
synchronously, event by event: decode, `assign`, dedup, admit, `fold`. Nothing awaits per event.

Exactness rests on the checkpoint (streams/engine/checkpoint.py): messages at or below the
restored state's offset are skipped, window rows carry `version = 2 * last offset + final`, a
function of the state alone, so a fuller state always wins; record tables collapse repeats by
identity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from enum import Enum, auto
from functools import partial
from typing import Any, Generic, TypeVar

import orjson
from aiokafka import ConsumerRecord

from schemas.exceptions import InvalidEvent
from sinks.base import Row
from streams.engine.checkpoint import (
    Cut,
    HighWater,
    PartitionProgress,
    StageSinks,
    Step,
)
from streams.engine.dead_letters import DeadLetters
from streams.engine.definition import DomainStream, Records
from streams.engine.exceptions import WorkerFault
from streams.engine.partition_stage import PartitionStage
from streams.engine.record_batches import refuse_unreadable
from streams.engine.records import Forward, forwards_of, is_watermark, origin_of
from streams.engine.rekey_reading import (
    apply_watermark,
    checked_origin,
    folded_values,
    refuse_forged_forwards,
)
from streams.engine.restore import relearn_ids
from streams.engine.skew import reject_far_future
from streams.engine.state_store import META_KEY, StateRow, StateStore, entry, tombstone
from streams.engine.windows import (
    DedupKey,
    InputClocks,
    PartitionWindows,
    Window,
    WindowKey,
    dedup_key,
)

log = logging.getLogger(__name__)

A = TypeVar("A")
E = TypeVar("E")


def window_version(window: Window[Any], final: bool) -> int:
    return 2 * window.last_offset + int(final)


# The keys of a partition's entries in `stream_state`, besides its meta entry.
WINDOW_PREFIX, KEYED_PREFIX = "w:", "k:"


def window_entry_key(key: WindowKey) -> str:
    group, start_ms = key
    return WINDOW_PREFIX + orjson.dumps([*group, start_ms]).decode()


def keyed_entry_key(key: str) -> str:
    return KEYED_PREFIX + key


class _Unkeyed(Enum):
    UNKEYED = auto()


# An event fed without its Kafka message (unit tests, offline tools): no key to hold it to.
UNKEYED = _Unkeyed.UNKEYED


def decode_keyed(stream: DomainStream[E, A], key: bytes | _Unkeyed | None, raw: bytes | None) -> E:
    """The event in a message whose key is the one contract section 3 gives it. Where a
    stream's windows live on its input's partitions (camera events, keyed by camera), another
    key would put one camera's minute on two partitions, whose rows overwrite each other."""
    event = stream.decode(raw)
    field = stream.key_field
    if key is UNKEYED or field is None:
        return event
    if key != str(getattr(event, field)).encode():
        raise InvalidEvent(f"key: must be the event's {field} (contract section 3)")
    return event


def fold_event(
    stream: DomainStream[E, A],
    state: PartitionWindows[A],
    offset: int,
    raw: bytes | None,
    records: Records,
    key: bytes | _Unkeyed | None = UNKEYED,
    source_time_ms: int | None = None,
    latest_ms: int | None = None,
) -> None:
    """Fold one message: decode, assign, judge lateness, dedup, admit, fold. InvalidEvent for
    a bad one.

    `key`: the message's key, held to the stream's `key_field` when it has one; UNKEYED for
    an event fed without its message.
    `source_time_ms`: the carrying input partition's stream time, for a routed event.
    `latest_ms`: the latest event time accepted (wall clock plus skew), None for no bound.
    """
    event = decode_keyed(stream, key, raw)
    if latest_ms is not None:
        # Every event, windowed or not: a status report from 2099 would be a camera's last
        # sign of life for good.
        reject_far_future(stream, event, latest_ms)
    assignment = stream.assign(event)
    if assignment is None:
        state.counters.recorded += 1
        stream.fold(state, event, None, records)
        return
    if state.is_late(
        assignment.end_ms, assignment.event_time_ms, source_time_ms, assignment.producer
    ):
        stream.fold(state, event, None, records)
        return
    seen_as = dedup_key(assignment.event_id)
    if not state.is_new(seen_as):
        return
    window = state.admit(seen_as, assignment.group, assignment.start_ms, assignment.end_ms, offset)
    stream.fold(state, event, window, records)


class WindowStage(PartitionStage[PartitionWindows[A]], Generic[E, A]):
    def __init__(
        self,
        stream: DomainStream[E, A],
        topic: str,
        sinks: StageSinks,
        store: StateStore,
        client_config: dict[str, Any],
        max_clock_skew_s: int,
        highwater: HighWater,
        input_topic: str | None = None,
    ) -> None:
        """`topic`: what the stage reads; `input_topic`: the stream's input topic when that is
        its re-key topic, which the dead letters of forwarded events name."""
        super().__init__(topic, highwater)
        self.stream = stream
        self._input_topic = topic if input_topic is None else input_topic
        self._sinks = sinks
        self._store = store
        self._client_config = client_config
        self._max_skew_ms = max_clock_skew_s * 1000
        self._touched: set[int] = set()
        self._records = Records()
        self._dead_letters = DeadLetters(topic, sinks.tables["dlq_events"], sinks.dead_letter_topic)

    # -- assignment -----------------------------------------------------------------------

    async def assign(self, partition: int) -> int | None:
        entries = await self._store.load(self.topic, partition)
        state = self.stream.new_state()
        if self.stream.rekeyed:
            state.inputs = InputClocks()
        meta = entries.pop(META_KEY, None)
        if meta is not None:
            self._restore(state, meta, entries)
            await relearn_ids(
                partial(self._events_of, state.inputs),
                state,
                self.topic,
                partition,
                self._client_config,
            )
        self._hold(partition, state)
        log.info(
            "assigned topic=%s partition=%d offset=%d windows=%d",
            self.topic,
            partition,
            state.offset,
            len(state.windows),
        )
        return None if meta is None else state.offset + 1

    def _restore(
        self, state: PartitionWindows[A], meta: dict[str, Any], entries: dict[str, Any]
    ) -> None:
        state.restore(meta)
        for key, value in entries.items():
            if key.startswith(KEYED_PREFIX):
                state.keyed[key[len(KEYED_PREFIX) :]] = value
            else:
                window = Window.from_state(value, self.stream.acc_from_state)
                state.windows[window.key] = window

    def _events_of(
        self, inputs: InputClocks | None, record: ConsumerRecord
    ) -> list[tuple[DedupKey, WindowKey]]:
        """(`dedup_key` of its id, window key) of each event of a record that may sit in an
        open window; for restore."""
        try:
            refuse_unreadable(record)
            if inputs is None:
                return self._assigned([record.value], record.key)
            return self._assigned(folded_values(inputs, record), UNKEYED)
        except InvalidEvent:
            return []

    def _assigned(
        self, values: list[bytes | None], key: bytes | _Unkeyed | None
    ) -> list[tuple[DedupKey, WindowKey]]:
        found = []
        for value in values:
            try:
                assignment = self.stream.assign(decode_keyed(self.stream, key, value))
            except InvalidEvent:
                continue  # a dead letter, folded into no window
            if assignment is not None:
                found.append((dedup_key(assignment.event_id), assignment.window_key))
        return found

    def partition_state(self, partition: int) -> PartitionWindows[A]:
        """The live state of an assigned partition, for a reset that rebuilds it offline."""
        return self._states[partition]

    def revoke(self, partition: int) -> None:
        super().revoke(partition)
        self._touched.discard(partition)

    # -- the hot path ---------------------------------------------------------------------

    def fold(self, partition: int, records: Sequence[ConsumerRecord]) -> None:
        state = self._held(partition)
        if state is None:
            return
        self._touched.add(partition)
        latest_ms = int(time.time() * 1000) + self._max_skew_ms
        fold_record = self._fold_own if state.inputs is None else self._fold_routed
        for record in records:
            offset = record.offset
            if offset <= state.offset:
                continue  # folded before the last restart
            state.offset = offset
            try:
                fold_record(state, record, latest_ms)
            except WorkerFault:
                raise
            except Exception as error:
                state.counters.invalid += 1
                self._dead_letters.add(partition, record, error)

    def _fold_own(self, state: PartitionWindows[A], record: ConsumerRecord, latest_ms: int) -> None:
        """A record of the stream's contract topic (camera events)."""
        state.counters.events += 1
        refuse_unreadable(record)
        fold_event(
            self.stream, state, record.offset, record.value, self._records, record.key, None,
            latest_ms,
        )  # fmt: skip

    def _fold_routed(
        self, state: PartitionWindows[A], record: ConsumerRecord, latest_ms: int
    ) -> None:
        """A record of the re-key topic: a forwarded event, or a router's watermark."""
        inputs = state.inputs
        assert inputs is not None  # the stage reads a re-key topic
        refuse_unreadable(record)  # a forged record on a re-key topic
        # Only routers write here, and they refuse what is further ahead than the skew; a
        # forged time could close every window for good. Twice the skew: routers may run on
        # hosts whose clocks differ a little.
        latest_ms += self._max_skew_ms
        if is_watermark(record.headers):
            apply_watermark(inputs, record.value, latest_ms)
            return
        forwards = forwards_of(record.headers, record.value)
        if forwards is not None:
            self._fold_forwards(state, inputs, record, *forwards, latest_ms)
            return
        origin = origin_of(record.headers)
        if origin is not None and origin.offset <= inputs.clock(origin.partition).offset:
            return  # forwarded again by a router that restarted
        state.counters.events += 1
        origin = checked_origin(origin, latest_ms)
        inputs.clock(origin.partition).heard(origin.offset, origin.stream_time_ms)
        self._fold_forward(
            state, record, origin.partition, origin.offset, origin.stream_time_ms, record.value,
            latest_ms,
        )  # fmt: skip

    def _fold_forwards(
        self,
        state: PartitionWindows[A],
        inputs: InputClocks,
        record: ConsumerRecord,
        partition: int,
        forwards: list[Forward],
        latest_ms: int,
    ) -> None:
        """Fold a record of forwards (streams/engine/records.py) of input `partition`. A forged
        stream time refuses the record whole, before any of it is folded; an invalid event in
        it is a dead letter of its own, as a record of the one-per-forward format was."""
        try:
            refuse_forged_forwards(forwards, latest_ms)
        except InvalidEvent:
            state.counters.events += 1
            raise
        clock = inputs.clock(partition)
        counters = state.counters
        for offset, stream_time_ms, value in forwards:
            if offset <= clock.offset:
                continue  # forwarded again by a router that restarted
            counters.events += 1
            clock.heard(offset, stream_time_ms)
            self._fold_forward(state, record, partition, offset, stream_time_ms, value, latest_ms)

    def _fold_forward(
        self,
        state: PartitionWindows[A],
        record: ConsumerRecord,
        partition: int,
        offset: int,
        stream_time_ms: int,
        value: bytes | None,
        latest_ms: int,
    ) -> None:
        """Fold the event input `partition` had at `offset`, carried by `record` of the re-key
        topic. An invalid one is a dead letter naming that input message (contract section 6),
        not the record: a record of forwards carries many, and `dlq_events` keeps one row per
        (source_topic, partition, offset). A router's re-sent record after a crash so gives
        the same letter, and `vtops dlq redrive` sends it back to the input topic. A forward
        keeps neither the input's key, headers nor timestamp: the letter has none."""
        try:
            fold_event(
                self.stream,
                state,
                record.offset,
                value,
                self._records,
                source_time_ms=stream_time_ms,
                latest_ms=latest_ms,
            )
        except WorkerFault:
            raise
        except Exception as error:
            state.counters.invalid += 1
            # `replace`: `vtops reprocess` routes in memory, where a record is no
            # ConsumerRecord (streams/engine/offline.py).
            forward = replace(
                record, offset=offset, key=None, value=value, headers=[], timestamp=-1
            )
            self._dead_letters.add(partition, forward, error, self._input_topic)

    # -- the checkpoint -------------------------------------------------------------------

    def cut(self, cut: Cut, last_checkpoint_ms: float) -> None:
        window_rows: list[Row] = []
        progress: list[Row] = []
        for partition, state in self._states.items():
            changed, closed = state.take_changes()
            keyed_changed, keyed_dropped = state.take_keyed_changes()
            touched = changed or closed or keyed_changed or keyed_dropped
            if not touched and partition not in self._touched:
                continue
            for windows, final in ((changed, False), (closed, True)):
                for window in windows:
                    row = self.stream.window_row(window, final)
                    row["version"] = window_version(window, final)
                    window_rows.append(row)
            cut.state += self._state_rows(
                partition, state, changed, closed, keyed_changed, keyed_dropped
            )
            progress.append(self._checkpointed(cut, partition, state, last_checkpoint_ms))
        self._touched = set()
        tables = self._sinks.tables
        cut.write(Step.WINDOWS, tables[self.stream.window_table], window_rows)
        for table, rows in self._records.drain().items():
            cut.write(Step.WINDOWS, tables[table], rows)
            record_topic = self._sinks.record_topics.get(table)
            if record_topic is not None:
                cut.write(Step.TOPICS, record_topic, rows)
        cut.write(Step.TOPICS, self._sinks.output_topic, window_rows)
        self._dead_letters.cut(cut)
        cut.write(Step.PROGRESS, tables["pipeline_progress"], progress)

    def _counted(self, state: PartitionWindows[A]) -> dict[str, int]:
        return state.counters.as_dict()

    def _progress(self, partition: int, state: PartitionWindows[A]) -> PartitionProgress:
        counters = state.counters.as_dict()
        return PartitionProgress(
            self.stream.name,
            self.topic,
            partition,
            state.offset,
            state.stream_time_ms,
            counters,
            len(state.windows),
            self._tally.counted(partition, counters),
        )

    def _state_rows(
        self,
        partition: int,
        state: PartitionWindows[A],
        changed: list[Window[A]],
        closed: list[Window[A]],
        keyed_changed: dict[str, Any],
        keyed_dropped: list[str],
    ) -> list[StateRow]:
        """The cut as stream_state entries; made now, because windows are live objects that
        the next batches keep folding into while the checkpoint's writes are under way."""
        topic, offset = self.topic, state.offset
        acc_to_state = self.stream.acc_to_state
        rows = [
            entry(topic, partition, window_entry_key(w.key), offset, w.to_state(acc_to_state))
            for w in changed
        ]
        rows += [tombstone(topic, partition, window_entry_key(w.key), offset) for w in closed]
        rows += [
            entry(topic, partition, keyed_entry_key(k), offset, v) for k, v in keyed_changed.items()
        ]
        rows += [tombstone(topic, partition, keyed_entry_key(k), offset) for k in keyed_dropped]
        rows.append(entry(topic, partition, META_KEY, offset, state.to_state()))
        return rows
