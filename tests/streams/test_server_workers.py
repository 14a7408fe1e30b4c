"""R7 and R13 on a ClickHouse server (the session's, tests/clickhouse_server.py): several
`vtops worker`s of one group, with default settings (metrics port included), share every
stream's partitions. Three join one by one while a backlog drains (the second takes
partitions with messages still waiting: checked from the offsets it resumes at); then, while
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
from kafka import KafkaConsumer, TopicPartition

from city import topics
from city.kafka_client import admin_client
from tests.clickhouse_server import own_database
from tests.pipeline import PipelineRun
from tests.streams.test_backlog import CityBacklog, wait_drained

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
_FOLDED = re.compile(r"assigned topic=(\S+) partition=(\d+) offset=(-?\d+) windows=")


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


def end_offsets(run: PipelineRun, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=run.bootstrap)
    try:
        tps = [TopicPartition(run.topic(topic), p) for p in range(run.partitions)]
        return {tp.partition: int(end) for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def backlog_taken(log: str, topic: str, ends: dict[int, int]) -> int:
    """Messages of `topic` still to be read in the partitions the worker was first given (its
    window stage logs the last offset its state had folded)."""
    first: dict[int, int] = {}
    for name, partition, offset in _FOLDED.findall(log):
        if name == topic:
            first.setdefault(int(partition), int(offset))
    return sum(max(0, ends[p] - (offset + 1)) for p, offset in first.items())


@contextmanager
def paused(workers: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """The running workers stopped (SIGSTOP) while the block runs, usually for less than the
    group's session timeout: on 2 cores they drain this backlog before the next worker has
    even imported its modules, so the drain is held until the newcomer's join has started a
    rebalance, and they resume into it with the backlog still there."""
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
    backlog = CityBacklog.make(seed=17, camera_events=100_000)
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
        run.create_topics()
        produce_malformed(run)
        workers: list[subprocess.Popen[bytes]] = []
        for chunk in chunks[:WORKERS]:  # the backlog
            chunk.produce(run, every)
        ends = end_offsets(run, topics.CAMERA_EVENTS)
        for _ in range(WORKERS):  # one by one, while the backlog drains
            with paused(workers):
                workers.append(run.start_worker())
                if len(workers) > 1:
                    until_rebalancing(run)
            run.wait_until_assigned(workers[-1])
        camera = run.topic(topics.CAMERA_EVENTS)
        waiting = [backlog_taken(run.log_of(w), camera, ends) for w in workers]
        print("camera events waiting in the partitions each worker was first given:", waiting)
        # The second joins into the drain for sure (see paused); the third usually does.
        assert waiting[1] > 0, "the second worker joined after the backlog was drained"
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
    assert letters == {run.topic(topic): count for topic, count in MALFORMED.items()}
    assert all(took(log) for log in logs), "a worker never got a partition"
    taken_over = took(logs[0][marks[0] :]) | took(logs[2][marks[2] :])
    assert took(logs[1]) & taken_over, "the killed worker's partitions did not move"
    assert took(logs[3]), "the restarted worker got no partition back"
    pauses = [pause for log in logs for pause in rebalance_pauses(log)]
    print(f"rebalance pauses (revoke to assignment, s): {sorted(round(p, 2) for p in pauses)}")
    assert pauses and max(pauses) < REBALANCE_BOUND_S, pauses
