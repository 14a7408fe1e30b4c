"""The rebalance pauses of a group on the local ClickHouse server: two workers drain, a third
joins, then one is SIGKILLed. A pause is the time from a worker's revoke to its next
assignment, read from the workers' logs (their partitions stand still meanwhile); the
SIGKILLed one's partitions stand still from the kill to the survivors' new assignment."""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kafka.admin import KafkaAdminClient

from benchmarks.server_group import Group, Server, until_committed
from benchmarks.topic import BenchTopic
from benchmarks.worker import LOG_TIME, WorkerFailed

_STAMP = r"^(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\])"
_REVOKED = re.compile(_STAMP + r".*revoked partitions=", re.M)
_ASSIGNED = re.compile(_STAMP + r".*assigned partitions=", re.M)


def _stamp(text: str) -> float:
    return datetime.strptime(text, LOG_TIME).timestamp()


def _events(stamps: re.Pattern[str], log: str, after: float) -> list[float]:
    return [t for t in (_stamp(m.group(1)) for m in stamps.finditer(log)) if t >= after]


def _until_assigned(group: Group, since: float, among: list[int], timeout_s: float) -> None:
    """Until each of the workers `among` has logged an assignment after `since`."""
    deadline = time.monotonic() + timeout_s
    while True:
        logs = group.logs()
        if all(_events(_ASSIGNED, logs[n], since) for n in among):
            return
        if time.monotonic() > deadline:
            raise WorkerFailed(f"no new assignment within {timeout_s:.0f} s")
        time.sleep(0.2)


@dataclass(frozen=True)
class Pauses:
    join_revoke_to_assign_s: list[float]  # each worker already there, when the third joined
    join_to_all_assigned_s: float | None  # the third's process start → the last worker assigned
    kill_revoke_to_assign_s: list[float]  # each survivor, at the rebalance after the kill
    kill_to_taken_over_s: float | None  # SIGKILL → the survivors assigned its partitions
    events_counted: int


def pause_run(
    topic: BenchTopic, server: Server, ends: dict[int, int], scratch: Path, timeout_s: float
) -> Pauses:
    total = sum(ends.values())
    group = Group(topic, server, topic.group("pauses", 0), scratch)
    admin = KafkaAdminClient(bootstrap_servers=topic.bootstrap, client_id="vtops-bench")
    try:
        for _ in range(2):
            group.start()
        until_committed(group, admin, ends, total * 3 // 4, timeout_s)
        joined_at = time.time()
        group.start()
        _until_assigned(group, joined_at, [0, 1, 2], timeout_s)
        killed_at = time.time()
        victim = group.workers[0][0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        _until_assigned(group, killed_at, [1, 2], timeout_s)
        until_committed(group, admin, ends, 1, timeout_s)
    finally:
        admin.close()
        group.stop()
    logs = group.logs()

    def revoke_to_assign(log: str, since: float, until: float) -> float | None:
        revokes = [t for t in _events(_REVOKED, log, since) if t < until]
        if not revokes:
            return None
        assigned = _events(_ASSIGNED, log, revokes[0])
        return assigned[0] - revokes[0] if assigned else None

    def first_assigned(since: float, among: list[str]) -> float | None:
        found = [_events(_ASSIGNED, log, since) for log in among]
        return max((times[0] for times in found if times), default=None)

    joins = [revoke_to_assign(log, joined_at, killed_at) for log in logs[:2]]
    kills = [revoke_to_assign(log, killed_at, float("inf")) for log in logs[1:]]
    all_assigned = first_assigned(joined_at, logs)
    taken_over = first_assigned(killed_at, logs[1:])
    return Pauses(
        [p for p in joins if p is not None],
        None if all_assigned is None else all_assigned - joined_at,
        [p for p in kills if p is not None],
        None if taken_over is None else taken_over - killed_at,
        group.counted(ends),
    )
