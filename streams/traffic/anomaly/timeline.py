"""The versions of the traffic baselines over event time, as a worker holds them.

`BaselineTimeline` answers which version judges a minute (the latest effective at or before
its event time) and holds the slots of the last few versions read, reading the others on the
store's own thread ahead of need or when first needed. A store that fails to answer is the
worker's failure (WorkerFault), never a dead letter of the event being folded. The versions and
their rows are streams/traffic/anomaly/baselines.py's.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import tzinfo
from typing import TypeVar

from clickhouse_connect.driver.client import Client

from streams.engine.exceptions import WorkerFault
from streams.traffic.anomaly.baselines import (
    NO_BASELINES,
    Baselines,
    BaselineVersion,
    SlotBaseline,
    read_version,
    read_versions,
)

T = TypeVar("T")


@dataclass(frozen=True)
class StoredVersions:
    """The store's versions as a worker finds them, and the slots of one it has just written
    itself (a fresh store's priors), which it need not read back."""

    versions: Sequence[BaselineVersion]
    written: Baselines | None = None


# Versions whose slots a worker holds at once (a version's slots are ~11 MB for Vũng Tàu);
# partitions at different times (a backlog drained in any order) read an evicted one again.
KEPT_VERSIONS = 3


class BaselineTimeline:
    """The versions of the baselines over event time: a minute at `ts_ms` is judged by the
    version with the latest `effective_from_ms` at or before it (none before the first).

    A version's slots are read through `read` on `executor` (the store's own thread): ahead of
    need by `prefetch`, or when a minute first needs them, which then waits for the read.

    The versions themselves may still be on their way (`stored` a future): a worker on a fresh
    store folds its first events while the priors are computed and written (issue 20, P7).
    Every question then waits for them: no minute is judged without its baselines.
    """

    def __init__(
        self,
        stored: StoredVersions | Future[StoredVersions],
        read: Callable[[int], Baselines],
        executor: Executor,
    ) -> None:
        self._read = read
        self._executor = executor
        self._versions: list[BaselineVersion] = []
        self._starts: list[int] = []
        self._slots: OrderedDict[int, Future[Baselines]] = OrderedDict()
        # The last version looked up and the event times it covers: most calls fall inside.
        self._cached = (0, 0, NO_BASELINES)
        self._stored: Future[StoredVersions] | None = None
        if isinstance(stored, Future):
            self._stored = stored
        else:
            self._take(stored)

    async def known(self) -> None:
        """Wait, without holding the event loop, until the versions are known; WorkerFault
        if preparing or reading the store failed."""
        if self._stored is not None:
            await asyncio.wait([asyncio.wrap_future(self._stored)])
            self._settle()

    def _settle(self) -> None:
        """Take the versions on their way, waiting for them (again, after a failure: the
        error is raised to every question, and nothing is answered without them)."""
        if self._stored is not None:
            stored = _store_answer(self._stored, "the store could not be prepared")
            self._stored = None
            self._take(stored)

    def _take(self, stored: StoredVersions) -> None:
        if stored.written is not None:
            written: Future[Baselines] = Future()
            written.set_result(stored.written)
            self._slots[stored.written.version] = written
        self.update(stored.versions)

    @property
    def versions(self) -> Sequence[BaselineVersion]:
        self._settle()
        return self._versions

    def update(self, versions: Iterable[BaselineVersion]) -> list[BaselineVersion]:
        """Add the versions not known yet (a refresh since the last read); return them."""
        self._settle()
        known = set(self._versions)
        added = sorted(v for v in set(versions) if v not in known)
        if added:
            self._versions = sorted([*self._versions, *added])
            self._starts = [v.effective_from_ms for v in self._versions]
            self._cached = (0, 0, NO_BASELINES)
        return added

    def version_at(self, ts_ms: int) -> int:
        self._settle()
        index = bisect_right(self._starts, ts_ms) - 1
        return self._versions[index].version if index >= 0 else 0

    def at(self, camera_id: str, ts_ms: int, tz: tzinfo) -> SlotBaseline | None:
        return self.baselines_at(ts_ms).at(camera_id, ts_ms, tz)

    def baselines_at(self, ts_ms: int) -> Baselines:
        """The slots of the version effective at `ts_ms` (NO_BASELINES before the first)."""
        start, end, baselines = self._cached
        if start <= ts_ms < end:
            return baselines
        self._settle()
        index = bisect_right(self._starts, ts_ms) - 1
        if index < 0:
            return NO_BASELINES
        version = self._versions[index].version
        baselines = _store_answer(self.prefetch(version), f"version {version} could not be read")
        end = self._starts[index + 1] if index + 1 < len(self._starts) else 2**63
        self._cached = (self._starts[index], end, baselines)
        return baselines

    def prefetch(self, version: int) -> Future[Baselines]:
        """The read of `version`'s slots, started unless it is under way or done (a read that
        failed, on a passing store error say, is started again)."""
        future = self._slots.get(version)
        if future is None or (future.done() and future.exception() is not None):
            future = self._slots[version] = self._executor.submit(self._read, version)
            while len(self._slots) > KEPT_VERSIONS:
                self._slots.popitem(last=False)
        self._slots.move_to_end(version)
        return future


def _store_answer(asked: Future[T], failure: str) -> T:
    """What the store answered. Its failure is the worker's, not the camera event's being
    folded when a minute asks for baselines: WorkerFault stops the worker (exit 1), where a
    dead letter of that event would lose it (streams/engine/exceptions.py)."""
    try:
        return asked.result()
    except Exception as error:
        raise WorkerFault(f"traffic baselines: {failure}: {error!r}") from error


def load_baselines(
    client: Client,
    database: str,
    executor: Executor,
    stored: StoredVersions | Future[StoredVersions] | None = None,
) -> BaselineTimeline:
    """The store's versions, each read on `executor` when first needed: those `stored` says
    (or will say), else those read now."""
    return BaselineTimeline(
        StoredVersions(read_versions(client, database)) if stored is None else stored,
        lambda version: read_version(client, database, version),
        executor,
    )
