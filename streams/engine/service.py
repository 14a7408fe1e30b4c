"""The hot path: one aiokafka consumer, batches folded synchronously, checkpoints behind them.

Why not Faust agents and tables: measured on this project's 2-core machine, Faust's
per-message path costs ~170 µs per event before our code runs (a `wait_first` with four tasks
per message, a lock, a queue and a loop pass; ../shared/research/engine.md), which capped the
worker at 3.3-3.9k events/s against 10k/s for Quix Streams. Its windows close on the wall
clock and restored windows never expire. So this service, started by the Faust app like any
other (`vtops worker`, its producer, signals and logging stay Faust's), reads every input
topic of every stage with one consumer in the app's group: `getmany` (through
streams/engine/fetch.py, which no producer's header names can stop) returns up to
`batch_size` records, each partition's batch is folded by its stage through the runner
(streams/engine/runner.py) with no await per event (~10 µs per camera event with msgspec
decoding), and a checkpoint
(streams/engine/checkpoint.py) runs in the background at most once at a time while the next
batches are folded.

Rebalances: on revoke, the checkpoint in flight and a last one are written (with a deadline)
and the partitions' state is dropped; on assign, each stage loads its state and the consumer
seeks to the offset after it, or to the beginning of the retained data when there is none: the
saved state, not the group's committed offset, says where a partition resumes.

Errors in the rebalance listener, or a checkpoint that a revoke cannot wait for (20 s), stop
the engine: the worker exits 1 rather than hold partitions it no longer reads.

Stalls: if nothing arrives for `stall_timeout_s` while an assigned partition has messages left,
the service logs it and re-seeks every partition to its position; if that does not bring
records within another period, it stops the worker with an error (exit 1) so that its
supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from mode import Service

from streams.engine.checkpoint import Checkpointer, Stage
from streams.engine.fetch import Fetch
from streams.engine.runner import StageRunner
from streams.engine.state_store import StateStore
from streams.engine.uptime import process_uptime_s

log = logging.getLogger(__name__)

# A worker killed with SIGKILL holds its partitions until its session expires; keep that short
# so a restarted or surviving worker takes over within seconds.
SESSION_TIMEOUT_S = 10

# How long a poll waits for records; less while folded events wait to be written, since an
# empty poll is what tells the loop that its input is drained (`checkpoint_due`): a drained
# backlog's last rows waited ~200 ms more for nothing (issue 20, P8).
POLL_MS = 200
POLL_PENDING_MS = 20

# How long a revoke waits for sinks before it gives the partitions up unsaved.
REVOKE_DEADLINE_S = 20.0


def checkpoint_due(
    now: float, next_at: float, interval_s: float, received: int, pending: int, max_pending: int
) -> bool:
    """Whether the loop takes a checkpoint after a poll that brought `received` records.

    Every `interval_s` (the next at `next_at`), or at once when `max_pending` events wait; and
    when a poll comes back empty with folded events unwritten, as soon as half an interval
    has passed since the last one began: a worker that has drained its input has nothing
    better to do, and its last rows and offsets would otherwise wait up to an interval (a
    re-keyed stream's window stage waits for its router's checkpoint first, so twice; issue
    20, P8). At a trickle of input this writes at most twice an interval, not once a poll.
    """
    if now >= next_at or pending >= max_pending:
        return True
    return not received and pending > 0 and now >= next_at - interval_s / 2


class EngineFailure(RuntimeError):
    """The engine cannot go on safely; the worker exits 1 and a restart resumes from the state."""


class StalledError(EngineFailure):
    """Consumption stopped with messages left to read, and re-seeking did not restart it."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: StreamEngine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._engine.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._engine.acquire(assigned)


class StreamEngine(Service):
    def __init__(
        self,
        store: StateStore,
        client_config: dict[str, Any],
        group_id: str,
        checkpoint_interval_s: float,
        max_pending_events: int,
        stall_timeout_s: float,
        exclusive: bool,
        batch_size: int = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._runner = StageRunner([])
        self._store = store
        self._client_config = client_config
        self._group_id = group_id
        self._interval_s = checkpoint_interval_s
        self._max_pending = max_pending_events
        self._stall_s = stall_timeout_s
        self._batch_size = batch_size
        # An embedded store serves one worker: it must own every partition.
        self._exclusive = exclusive
        self._consumer: AIOKafkaConsumer | None = None
        self._fetch: Fetch | None = None
        self.checkpointer = Checkpointer([], store, self._commit)
        self._in_flight: asyncio.Task[None] | None = None
        self._pending = 0
        # Changed in place only: a fold in progress reads it between slices (runner.py).
        self.assigned: set[TopicPartition] = set()
        # True from the end of an assignment (state loaded, offsets sought) to the next revoke.
        self.ready = False
        self._consuming: asyncio.Event | None = None  # set once the loop has ended
        self._failure: BaseException | None = None  # what stopped the loop, if anything

    @property
    def stages(self) -> list[Stage]:
        return self._runner.stages

    @property
    def failed(self) -> bool:
        """The engine stopped for good (or is stopping): the worker is about to exit 1."""
        return self._failure is not None or self.crashed

    def register(self, stages: Sequence[Stage]) -> None:
        """The stages to feed, in checkpoint order (routers before the windows they feed)."""
        self._runner = StageRunner(stages)
        self.checkpointer = Checkpointer(stages, self._store, self._commit)

    # -- what stages ask of the consumer ---------------------------------------------------

    def highwater(self, topic: str, partition: int) -> int | None:
        consumer = self._consumer
        if consumer is None:
            return None
        hw: int | None = consumer.highwater(TopicPartition(topic, partition))
        return hw

    def partitions_of(self, topic: str) -> int | None:
        found = None if self._consumer is None else self._consumer.partitions_for_topic(topic)
        return None if not found else len(found)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        owned = {tp: offset for tp, offset in offsets.items() if tp in self.assigned}
        if not owned:
            return
        try:
            await self._consumer.commit(owned)
        except KafkaError as error:
            # The state store holds the truth; the group's offsets catch up next time.
            log.warning("offset commit failed, will retry next checkpoint: %r", error)

    # -- lifecycle ------------------------------------------------------------------------

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_S * 1000,
            heartbeat_interval_ms=2_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self._client_config,
        )
        await self._consumer.start()
        self._fetch = Fetch(self._consumer, self._client_config)
        # Subscribed after the start, so that the start does not wait for an assignment (a
        # killed worker's partitions stay held for a session timeout): the first poll does,
        # and a SIGTERM meanwhile stops the worker at once.
        topics = self._runner.topics
        self._consumer.subscribe(topics=topics, listener=_Rebalance(self))
        log.info("engine started topics=%s", ",".join(topics))

    async def on_stop(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        try:
            if self._consuming is not None:
                # The loop sees `should_stop` after its current poll (at most POLL_MS).
                await self._consuming.wait()
            if self._failure is None:
                await self._settle()
                await self.checkpointer.run()
                log.info("shutdown checkpoint written")
        finally:
            await consumer.stop()
            self._consumer = None

    async def _settle(self) -> None:
        """Wait for the checkpoint in flight, re-raising what made it fail."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    def _fail(self, error: BaseException) -> None:
        """Stop consuming for good: the loop raises it, the worker exits 1, and a restart
        resumes from the last saved state."""
        if self._failure is None:
            self._failure = error
            log.critical("the stream engine stops: %r", error)

    async def release(self, revoked: set[TopicPartition]) -> None:
        log.info("revoked partitions=%d", len(revoked))
        self.ready = False
        try:
            await self._release(revoked)
        except Exception as error:  # aiokafka would only log it
            self._fail(error)

    async def _release(self, revoked: set[TopicPartition]) -> None:
        task = self._in_flight
        if task is not None:
            await self._within_deadline(task)  # re-raises what made it fail
            if self._in_flight is task:
                self._in_flight = None
        await self._within_deadline(asyncio.ensure_future(self.checkpointer.run()))
        for tp in revoked:
            self._runner.stage(tp.topic).revoke(tp.partition)
        self.assigned -= revoked
        self._pending = 0

    @staticmethod
    async def _within_deadline(task: asyncio.Future[None]) -> None:
        """Wait for a checkpoint without cancelling it; a revoke cannot wait for ever."""
        done, _ = await asyncio.wait({task}, timeout=REVOKE_DEADLINE_S)
        if not done:
            raise EngineFailure(
                f"a checkpoint did not finish within {REVOKE_DEADLINE_S:.0f} s of a revoke"
            )
        task.result()

    async def acquire(self, assigned: set[TopicPartition]) -> None:
        try:
            await self._acquire(assigned)
        except Exception as error:  # aiokafka would only log it, and the partitions stay paused
            self._fail(error)

    async def _acquire(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        if self._exclusive:
            every = {
                TopicPartition(topic, p)
                for topic in self._runner.topics
                for p in consumer.partitions_for_topic(topic) or ()
            }
            if assigned != every:
                raise EngineFailure(
                    "this worker was given part of the partitions: another worker shares its "
                    "group, and several workers need a ClickHouse server (VTOPS_CLICKHOUSE_URL; "
                    "`vtops clickhouse start` runs one on this machine)"
                )
        started = time.monotonic()
        # The fetcher runs while this listener loads state: hold the partitions back until
        # their stages know them and they sit at their state's offset.
        consumer.pause(*assigned)
        from_start: list[TopicPartition] = []
        await self._store.preload((tp.topic, tp.partition) for tp in assigned)
        try:
            for tp in sorted(assigned):
                offset = await self._runner.stage(tp.topic).assign(tp.partition)
                if offset is None:
                    from_start.append(tp)
                else:
                    consumer.seek(tp, offset)
        finally:
            self._store.forget()
        if from_start:
            await consumer.seek_to_beginning(*from_start)
            for tp in from_start:
                # Retention may have removed the start: the stage must not wait for it.
                self._runner.stage(tp.topic).starts_at(tp.partition, await consumer.position(tp))
        self.assigned |= assigned
        consumer.resume(*assigned)
        self.ready = True
        log.info("assigned partitions=%d load_s=%.2f", len(assigned), time.monotonic() - started)

    # -- the hot path ---------------------------------------------------------------------

    @Service.task
    async def _consume(self) -> None:
        self._consuming = consuming = asyncio.Event()
        try:
            await self._consume_until_stopped()
        except Exception as error:
            self._fail(error)
            raise
        finally:
            consuming.set()

    async def _consume_until_stopped(self) -> None:
        fetch = self._fetch
        assert fetch is not None
        next_checkpoint = time.monotonic() + self._interval_s
        quiet_since = time.monotonic()
        reseeked = False
        folded_yet = False
        while not self.should_stop:
            timeout_ms = POLL_PENDING_MS if self._pending else POLL_MS
            batches = await fetch.getmany(timeout_ms=timeout_ms, max_records=self._batch_size)
            if self._failure is not None:
                raise self._failure
            received = await self._runner.fold_poll(batches, self.assigned)
            if received and not folded_yet:
                folded_yet = True  # the start-up's end (issue 20, P7); benchmarks read it
                log.info("first events folded events=%d uptime_s=%s", received, process_uptime_s())
            self._pending += received
            now = time.monotonic()
            if received:
                quiet_since, reseeked = now, False
            elif now - quiet_since >= self._stall_s:
                reseeked = await self._on_quiet(reseeked)
                quiet_since = now
            due = checkpoint_due(
                now, next_checkpoint, self._interval_s, received, self._pending, self._max_pending
            )
            if due and await self._checkpoint(wait=self._pending >= self._max_pending):
                next_checkpoint = now + self._interval_s

    async def _checkpoint(self, wait: bool) -> bool:
        """Start a checkpoint unless one is in flight (False); `wait` for it when input must
        pause."""
        task = self._in_flight
        if task is not None and not task.done():
            if not wait:
                return False
            await asyncio.wait({task})
        if task is not None and task.done():
            self._in_flight = None
            task.result()  # a sink's fatal error stops the worker here
        self._in_flight = asyncio.create_task(self.checkpointer.run())
        self._pending = 0
        if wait:
            await asyncio.wait({self._in_flight})
        return True

    async def _on_quiet(self, reseeked: bool) -> bool:
        """Nothing arrived for a stall period: fine when nothing is left to read."""
        consumer = self._consumer
        assert consumer is not None
        behind = []
        for tp in list(self.assigned):
            highwater = consumer.highwater(tp)
            position = await consumer.position(tp)
            if highwater is not None and position < highwater:
                behind.append((tp, position, highwater))
        if not behind:
            return False
        left = sum(hw - position for _, position, hw in behind)
        if reseeked:
            raise StalledError(
                f"no records for {self._stall_s:.0f} s twice with {left} messages left in "
                f"{len(behind)} partitions; stopping so that a supervisor restarts the worker"
            )
        log.error(
            "stalled: no records for %.0f s with %d messages left in %d partitions; re-seeking",
            self._stall_s,
            left,
            len(behind),
        )
        for tp, position, _ in behind:
            consumer.seek(tp, position)
        return True
