"""The one way to run the stages: batches of a partition's records, folded by its topic's stage.

Every fold of a stage goes through `StageRunner` (tests/test_one_runner.py says so), whoever reads
the records: the live worker (streams/engine/service.py) feeds it each poll of the group's
consumer and leaves the cuts to its checkpointer; `vtops reprocess` and `vtops offsets reset`'s
rebuild (streams/engine/offline.py) feed it the bounded reader's batches of fixed offset ranges
and cut as they go. The runner knows neither source: it holds the stages by topic, and a poll
folded live shares the event loop (city/event_loop.py).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence

from aiokafka import TopicPartition

from city.event_loop import LoopShare
from streams.engine.checkpoint import Stage

# Records folded between two looks at the clock (city/event_loop.py): ~5 ms of camera events.
FOLD_SLICE = 500


class StageRunner:
    """The stages of a worker or an offline run, by the topic each one reads."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        # In checkpoint order (routers before the windows they feed), as registered.
        self._stages = {stage.topic: stage for stage in stages}

    @property
    def stages(self) -> list[Stage]:
        return list(self._stages.values())

    @property
    def topics(self) -> list[str]:
        return list(self._stages)

    def stage(self, topic: str) -> Stage:
        return self._stages[topic]

    def fold_batch(self, tp: TopicPartition, records: Sequence[object]) -> None:
        """Fold a batch of `tp`'s records, in offset order; an empty one still makes the
        partition's state (and meta) part of the next cut."""
        self._stages[tp.topic].fold(tp.partition, records)

    async def fold_poll(
        self, batches: Mapping[TopicPartition, Sequence[object]], held: Container[TopicPartition]
    ) -> int:
        """Fold one poll's records in slices of FOLD_SLICE that give the loop back every
        `HOLD_S`, so that /healthz answers during a backlog; how many records the poll had.

        `held` is read between slices, as a rebalance may run in between: a partition no longer
        held drops the rest of its records, and one assigned again skips what its state holds
        already (by offset)."""
        share = LoopShare()
        for tp, records in batches.items():
            stage = self._stages[tp.topic]
            for start in range(0, len(records), FOLD_SLICE):
                if tp not in held:
                    break
                stage.fold(tp.partition, records[start : start + FOLD_SLICE])
                await share.turn()
        return sum(len(records) for records in batches.values())
