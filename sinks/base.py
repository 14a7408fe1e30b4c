"""The one place where sinks retry: a batch is written whole, or retried whole, or fails loudly.

Every sink write is idempotent (upserts by key and version, records collapsing by identity),
so retrying a batch that may have landed cannot count anything twice. A transient failure is
retried with capped backoff for as long as it lasts: the checkpoint waits, offsets are not
committed, and the worker stops taking new input once its pending events reach their bound.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sinks.exceptions import TransientSinkError

log = logging.getLogger(__name__)

Row = dict[str, Any]


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.2
    max_s: float = 5.0

    def delays(self) -> Any:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


class BatchSink(ABC):
    """A destination for rows of one kind; subclasses only say how to write a batch once."""

    name: str

    def __init__(self, backoff: Backoff = Backoff()) -> None:
        self._backoff = backoff
        # Transient failures retried since the worker started, for /metrics.
        self.retries = 0

    @abstractmethod
    async def write(self, batch: Sequence[Row]) -> None:
        """Write the batch once; raise TransientSinkError when a retry may succeed."""

    async def flush(self, batch: Sequence[Row]) -> None:
        if not batch:
            return
        delays = self._backoff.delays()
        while True:
            try:
                await self.write(batch)
                return
            except TransientSinkError as error:
                self.retries += 1
                delay = next(delays)
                log.warning(
                    "sink=%s rows=%d retry_in_s=%.1f error=%s", self.name, len(batch), delay, error
                )
                await asyncio.sleep(delay)
