"""Re-learning which event ids the open windows hold, after a restart or a rebalance.

The state store keeps window aggregates but not their ids. Every id folded into a window that
is still open sits in the stage's partition between that window's first and last offsets, so
re-reading that stretch once, with a plain consumer outside the group, restores dedup exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import ConsumerRecord, TopicPartition

from streams.engine.pause import pause_point
from streams.engine.reader import BoundedReader, RangeNotRetained, ReaderError
from streams.engine.windows import DedupKey, PartitionWindows, WindowKey

log = logging.getLogger(__name__)

A = TypeVar("A")


async def relearn_ids(
    windows_of: Callable[[ConsumerRecord], list[tuple[DedupKey, WindowKey]]],
    state: PartitionWindows[A],
    topic: str,
    partition: int,
    client_config: dict[str, Any],
) -> int:
    """Re-read the topic from the oldest open window's first offset up to the state's offset.

    A stretch retention has cut, or a broker that stops answering, leaves dedup with the ids
    that could be read: the windows' aggregates stand either way."""
    if not state.windows:
        return 0
    start = min(window.first_offset for window in state.windows.values())
    asked = {TopicPartition(topic, partition): (start, state.offset + 1)}
    relearned = 0
    # A restore waits less on a silent broker than an operator's tool: the partition waits.
    async with BoundedReader(client_config, stall_s=10.0) as reader:
        ranges = await reader.retained(asked)
        if ranges != asked:
            log.warning("restore %s", RangeNotRetained(asked, ranges))
        try:
            async for _, messages in reader.read(ranges):
                for message in messages:
                    for event_id, key in windows_of(message):
                        state.remember(event_id, key, message.offset)
                        relearned += 1
                await pause_point("restore")  # some ids re-read, the partition not resumed
        except ReaderError as failed:
            log.warning("restore topic=%s partition=%d stopped early: %s", topic, partition, failed)
    log.info(
        "restore topic=%s partition=%d from_offset=%d to_offset=%d ids=%d",
        topic,
        partition,
        start,
        state.offset,
        relearned,
    )
    return relearned
