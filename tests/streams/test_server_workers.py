"""R7 and R13 on a ClickHouse server (the session's, tests/clickhouse_server.py): several
`vtops worker`s of one group, with default settings (metrics port included), share every
stream's partitions. Three join one by one, each while a stretch of backlog drains (the
group has messages uncommitted when the newcomer's join begins its rebalance); then, while
events flow, one is SIGKILLed (its partitions move to the others) and restarted (some move
back). The rows, the late counts and the dead letters of all three streams must equal the
independent models, and no worker may stall beyond a rebalance when another joins or leaves.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from city import topics
from city.kafka_client import admin_client
from tests.clickhouse_server import own_database
from tests.pipeline import PipelineRun
from tests.streams.test_backlog import CityBacklog, wait_drained
from vtops.kafka.offsets import remaining

pytestmark = pytest.mark.integration

PARTITIONS = 6
WORKERS = 3
# A SIGKILLed member holds its partitions until the group drops it (the engine's session
# timeout, 10 s); then one rebalance. Nothing may wait longer than that.
REBALANCE_BOUND_S = 25.0
REBALANCING = ("PreparingRebalance", "CompletingRebalance")
MALFORMED = {topic: 7 + n for n, topic in enumerate(topics.INPUTS)}
_STAMP = r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]"
_REVOKED = re.compile(_STAMP + r".*revoked partitions=", re.M)
_ASSIGNED = re.compile(_STAMP + r".*assigned partitions=(\d+)", re.M)
_TOOK = re.compile(r"assigned topic=(\S+) partition=(\d+)")


def _time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def rebalance_pauses(log: str) -> list[float]:
    """Seconds from each revoke to the assignment that ends it, in one worker's log: how long
    its partitions stood still for a rebalance."""
    assigned = [(_time(m.group(1)), m) for m in _ASSIGNED.finditer(log)]
    pauses = []
    for revoke in _REVOKED.finditer(log):
        at = _time(revoke.group(1))
        after = [t for t, m in assigned if m.start() > revoke.start()]
        if after:
            pauses.append(after[0] - at)
    return pauses


def took(log: str) -> set[tuple[str, int]]:
    """Every (topic, partition) the worker was ever given."""
    return {(t, int(p)) for t, p in _TOOK.findall(log)}


@contextmanager
def paused(workers: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """The running workers stopped (SIGSTOP) while the block runs, usually for less than the
    group's session timeout: on 2 cores they would drain a stretch of backlog before the next
    worker has even imported its modules, so the stretch is produced while they are held,
    and they resume into the newcomer's rebalance with it still waiting."""
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)


def until_rebalancing(run: PipelineRun, timeout_s: float = 60) -> None:
    """Until the group's coordinator has begun a rebalance: a newcomer has asked to join."""
    with admin_client(run.kafka_settings) as admin:
        deadline = time.monotonic() + timeout_s
        while admin.describe_groups([run.app_id])[run.app_id]["group_state"] not in REBALANCING:
            assert time.monotonic() < deadline, f"no rebalance began within {timeout_s} s"
            time.sleep(0.1)


def produce_malformed(run: PipelineRun) -> None:
    for topic, count in MALFORMED.items():
        run.produce(topic, ((f"bad-{n}", b'{"not": json') for n in range(count)))


def test_workers_join_a_drain_one_by_one_then_one_is_killed_and_back_all_exact(
    clickhouse_server: str, tmp_path: Path
) -> None:
    backlog = CityBacklog.make(seed=17, camera_events=40_000)
    chunks = [backlog.chunk(n, WORKERS + 1) for n in range(WORKERS + 1)]
    every = set(range(PARTITIONS))
    with own_database(clickhouse_server, "r13") as database:
        run = PipelineRun(
            data_dir=tmp_path,
            partitions=PARTITIONS,
            clickhouse_url=clickhouse_server,
            database=database,
            default_metrics_port=True,
        )
        try:
            run.create_topics()
            produce_malformed(run)
            workers: list[subprocess.Popen[bytes]] = []
            camera = run.topic(topics.CAMERA_EVENTS)
            waiting = []
            for chunk in chunks[:WORKERS]:  # one by one, each into a drain
                with paused(workers):
                    chunk.produce(run, every)
                    workers.append(run.start_worker())
                    if len(workers) > 1:
                        until_rebalancing(run)
                    waiting.append(remaining(run.kafka_settings, camera))
                run.wait_until_assigned(workers[-1])
            print("camera events uncommitted as each worker joined:", waiting)
            assert all(waiting)
            # While the last stretch flows in live: one is killed, the others take its
            # partitions, and it comes back and takes some again.
            flow = threading.Thread(target=chunks[WORKERS].produce, args=(run, every))
            flow.start()
            killed = workers[1]
            marks = [len(run.log_of(w)) for w in workers]
            assert run.stop_worker(killed, signal.SIGKILL) == -signal.SIGKILL
            for survivor in (0, 2):
                run.wait_for_log(
                    workers[survivor], "assigned partitions=", REBALANCE_BOUND_S, marks[survivor]
                )
            back = run.start_worker()
            run.wait_until_assigned(back)
            flow.join()
            wait_drained(run)
            for worker in (workers[0], workers[2], back):
                assert run.stop_worker(worker) == 0
            logs = [run.log_of(w) for w in (*workers, back)]

            backlog.assert_exact(run)
            letters = dict(
                run.rows("SELECT source_topic, count() FROM vtops.dlq_events FINAL GROUP BY 1")
            )
        finally:
            run.kill_leftovers()
    assert letters == {run.topic(topic): count for topic, count in MALFORMED.items()}
    assert all(took(log) for log in logs), "a worker never got a partition"
    taken_over = took(logs[0][marks[0] :]) | took(logs[2][marks[2] :])
    assert took(logs[1]) & taken_over, "the killed worker's partitions did not move"
    assert took(logs[3]), "the restarted worker got no partition back"
    pauses = [pause for log in logs for pause in rebalance_pauses(log)]
    print(f"rebalance pauses (revoke to assignment, s): {sorted(round(p, 2) for p in pauses)}")
    assert pauses and max(pauses) < REBALANCE_BOUND_S, pauses
