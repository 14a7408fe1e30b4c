"""Re-learning which event ids the open windows hold, after a restart or a rebalance.

The state store keeps window aggregates but not their ids. Every id folded into a window that
is still open sits in the stage's partition between that window's first and last offsets, so
re-reading that stretch once, with a plain consumer outside the group, restores dedup exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streams.engine.pause import pause_point
from streams.engine.windows import PartitionWindows, WindowKey

log = logging.getLogger(__name__)

A = TypeVar("A")

# The stretch to re-read was already in the topic when the state was saved; a long silence
# means it is gone (retention), and dedup falls back to what was found.
_GIVE_UP_AFTER_IDLE_POLLS = 10


async def relearn_ids(
    window_of: Callable[[ConsumerRecord], tuple[str, WindowKey] | None],
    state: PartitionWindows[A],
    topic: str,
    partition: int,
    client_config: dict[str, Any],
) -> int:
    """Re-read the topic from the oldest open window's first offset up to the state's offset."""
    if not state.windows:
        return 0
    start = min(window.first_offset for window in state.windows.values())
    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **client_config)
    await consumer.start()
    relearned = 0
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        done, idle_polls = False, 0
        while not done:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            messages = batches.get(tp, [])
            idle_polls = 0 if messages else idle_polls + 1
            if idle_polls >= _GIVE_UP_AFTER_IDLE_POLLS:
                log.warning(
                    "restore topic=%s partition=%d stopped early at position=%d",
                    topic,
                    partition,
                    await consumer.position(tp),
                )
                break
            for message in messages:
                if message.offset > state.offset:
                    done = True
                    break
                found = window_of(message)
                if found is not None:
                    state.remember(*found, message.offset)
                    relearned += 1
            if messages:
                await pause_point("restore")  # some ids re-read, the partition not resumed
            if messages and messages[-1].offset >= state.offset:
                done = True
    finally:
        await consumer.stop()
    log.info(
        "restore topic=%s partition=%d from_offset=%d to_offset=%d ids=%d",
        topic,
        partition,
        start,
        state.offset,
        relearned,
    )
    return relearned
