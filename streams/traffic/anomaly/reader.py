"""A running worker's view of the baselines' versions, read again on the operator's schedule.

`vtops baselines refresh` writes a version effective from an event time ahead of now
(baselines.py). Once the versions are known at start, the current one's slots are read ahead;
every `VTOPS_BASELINES_REFRESH_MINUTES` the worker reads the list of versions, adds the new
ones to its timeline and reads their slots in the store's thread, before the first minute they
judge: no restart, and the folds do not wait for the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from mode import Service

from streams.traffic.anomaly.baselines import BaselineVersion, read_versions
from streams.traffic.anomaly.timeline import BaselineTimeline

log = logging.getLogger(__name__)


def prefetch_current(timeline: BaselineTimeline, now_ms: int) -> None:
    """Start reading the version effective at `now_ms` and every later one: what a live
    worker judges next."""
    for version in timeline.versions:
        if version.version == timeline.version_at(now_ms) or version.effective_from_ms > now_ms:
            timeline.prefetch(version.version)


class BaselineReader(Service):
    """Reads new versions into `timeline` every `interval_s`."""

    def __init__(
        self,
        timeline: BaselineTimeline,
        client: Client,
        database: str,
        executor: Executor,
        interval_s: float,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._timeline = timeline
        self._client = client
        self._database = database
        self._executor = executor
        self._interval_s = interval_s
        self._clock = clock

    @Service.task
    async def _read_on_schedule(self) -> None:
        # A fresh store's priors are being written while the worker starts (streams/app.py).
        await self._timeline.known()
        log.info("traffic baselines versions=%s", [v.version for v in self._timeline.versions])
        prefetch_current(self._timeline, int(self._clock() * 1000))
        while not self.should_stop:
            await self.sleep(self._interval_s)
            if not self.should_stop:
                await self.read_new()

    async def read_new(self) -> list[BaselineVersion]:
        """Add the versions written since the last read; return them."""
        try:
            versions = await asyncio.get_running_loop().run_in_executor(
                self._executor, read_versions, self._client, self._database
            )
        except ClickHouseError as error:
            # The store is down for a while: the versions known judge on, read again later.
            log.warning("baselines not read, kept as they were: %s", str(error).splitlines()[0])
            return []
        added = self._timeline.update(versions)
        now_ms = int(self._clock() * 1000)
        for version in added:
            log.info(
                "baselines version=%d read, effective_from_ms=%d",
                version.version,
                version.effective_from_ms,
            )
            if version.effective_from_ms <= now_ms:
                # A live worker may have judged minutes since then by the version before (the
                # alerts say which); a replay judges them by this one.
                log.warning(
                    "baselines version=%d read %d s after its effective time",
                    version.version,
                    (now_ms - version.effective_from_ms) // 1000,
                )
        prefetch_current(self._timeline, now_ms)
        return added
