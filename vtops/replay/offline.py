"""What the worker's stages need to run outside the worker (vtops/replay/rebuild.py and
reprocess.py): a store with nothing saved and sinks that keep nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sinks.base import BatchSink, Row
from sinks.clickhouse.migrations import TABLES
from streams.engine.checkpoint import StageSinks
from streams.engine.state_store import StateStore


class Discard(BatchSink):
    """Rows an offline run computes but does not write where the worker would."""

    name = "discard"

    async def write(self, batch: Sequence[Row]) -> None:
        return None


class NothingSaved(StateStore):
    """An offline run starts where a worker without saved state starts."""

    def __init__(self) -> None:  # no client: an offline run reads no store and writes none
        pass

    async def load(self, topic: str, partition: int) -> dict[str, Any]:
        return {}


def discarding_sinks(**tables: BatchSink) -> StageSinks:
    """Sinks that keep nothing, except the given tables."""
    discard = Discard()
    return StageSinks({**dict.fromkeys(TABLES, discard), **tables}, discard, discard)
