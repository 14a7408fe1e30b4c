"""What every stage does with the partitions it holds, whatever it keeps of each one.

The window stage keeps a `PartitionWindows` per partition, the routing stage what it knows of
an input partition; both resume after the last offset they folded, report that offset and its
lag at every checkpoint, and commit the offset after it. That bookkeeping is written once here;
a stage says what it keeps (`S`), what it has counted of it and how its progress reads.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

from aiokafka import TopicPartition

from sinks.base import Row
from streams.engine.checkpoint import Cut, HighWater, PartitionProgress, lag_of, progress_row
from streams.engine.tally import ProcessTally

log = logging.getLogger(__name__)


class Held(Protocol):
    # The last offset folded into what the stage holds of a partition; -1 before the first.
    offset: int


S = TypeVar("S", bound=Held)


class PartitionStage(ABC, Generic[S]):
    """The partitions a stage holds (`_states`), from assignment to revoke."""

    def __init__(self, topic: str, highwater: HighWater) -> None:
        self.topic = topic
        self._highwater = highwater
        self._states: dict[int, S] = {}
        self._tally = ProcessTally()

    @abstractmethod
    def _counted(self, state: S) -> dict[str, int]:
        """The counters the process tally (streams/engine/tally.py) takes from `state`."""

    @abstractmethod
    def _progress(self, partition: int, state: S) -> PartitionProgress: ...

    def _hold(self, partition: int, state: S) -> None:
        self._states[partition] = state
        self._tally.assigned(partition, self._counted(state))

    def _held(self, partition: int) -> S | None:
        """The partition's state for a batch of its records; None (logged) when not held."""
        state = self._states.get(partition)
        if state is None:
            log.error(
                "records of unassigned partition topic=%s partition=%d", self.topic, partition
            )
        return state

    def starts_at(self, partition: int, offset: int) -> None:
        state = self._states[partition]
        state.offset = max(state.offset, offset - 1)

    def revoke(self, partition: int) -> None:
        state = self._states.pop(partition, None)
        if state is not None:
            self._tally.revoked(partition, self._counted(state))

    def progress(self) -> list[PartitionProgress]:
        return [self._progress(partition, state) for partition, state in self._states.items()]

    def _checkpointed(self, cut: Cut, partition: int, state: S, last_checkpoint_ms: float) -> Row:
        """The partition's `pipeline_progress` row for the cut; its next offset to the cut's
        offsets, to commit once the state is saved."""
        if state.offset >= 0:
            cut.offsets[TopicPartition(self.topic, partition)] = state.offset + 1
        return progress_row(
            self._progress(partition, state),
            lag_of(self._highwater(self.topic, partition), state.offset),
            last_checkpoint_ms,
        )
