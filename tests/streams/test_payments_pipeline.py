"""payments.terminal-counts through the real broker and worker into the embedded ClickHouse.

Tallies of one window come from terminals on every input partition; the worker re-keys them
by (ward, category) first. Steps whose order matters (the tally that closes a window, the late
one after it) go out in phases, each waiting until the worker has checkpointed the last:
tallies on different input partitions reach their window's owner in no fixed order.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from city import topics
from streams.app import by_group_topic
from streams.engine.records import is_watermark, read_watermark
from tests.factories_payments import (
    HOUR_MS,
    MINUTE_MS,
    T0,
    ExpectedCashless,
    random_tallies,
    tally,
)
from tests.factories_portal import ExpectedPortal, at, random_dossiers, step
from tests.pipeline import PipelineRun, closing_keys, key_per_partition
from vtops.kafka.offsets import wait_until_consumed

pytestmark = pytest.mark.integration

CASHLESS_SQL = """
    SELECT ward, category, toUnixTimestamp(window_start), reports, terminals, cash, vietqr, card,
           ewallet, bank_transfer, cash_amount_vnd, cashless_amount_vnd, cashless_share, final
    FROM vtops.payments_cashless_1h FINAL"""

KPIS_SQL = """
    SELECT day, agency, procedure_code, submitted, submitted_online, submitted_full_online,
           submitted_vneid_l2, paid_online, resolved, resolved_signed, resolved_on_time,
           resolved_no_due, rejected, final
    FROM vtops.portal_kpis_1d FINAL"""

GOOD = tally("bad", "VT-T-00001", T0)
# (raw message, the field its dead letter must name)
INVALID: list[tuple[bytes, str]] = [
    (b"{not json", "payload"),
    (b"\xff\xfe", "payload"),
    (orjson.dumps({**GOOD, "ward": "phuong-6"}), "ward"),  # there is no Phường 6
    (orjson.dumps({**GOOD, "category": "casino"}), "category"),
    (orjson.dumps({**GOOD, "period_end": T0}), "period_end"),
    (orjson.dumps({**GOOD, "period_end": T0 + HOUR_MS + 1}), "period_end"),
    (orjson.dumps({**GOOD, "period_start": "2024-09-14T07:00:00"}), "period_start"),
    (orjson.dumps({**GOOD, "counts": {"cash": 1, "paypal": 2}}), "counts"),
    (orjson.dumps({**GOOD, "counts": {"vietqr": -3}}), "counts.vietqr"),
    (orjson.dumps({**GOOD, "counts": {"card": 1.5}}), "counts.card"),
    (orjson.dumps({**GOOD, "counts": None}), "counts"),
    (orjson.dumps({**GOOD, "amounts_vnd": {"cash": "many"}}), "amounts_vnd.cash"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "terminal_id"}), "terminal_id"),
    (orjson.dumps({**GOOD, "event_id": ""}), "event_id"),
]


def kpi_rows(run: PipelineRun) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in run.rows(KPIS_SQL)}


def cashless_rows(run: PipelineRun) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in run.rows(CASHLESS_SQL)}


def produce_and_wait(run: PipelineRun, events: list[dict[str, Any]]) -> None:
    """Send tallies and wait until both stages have checkpointed everything sent so far."""
    run.produce_events(topics.PAYMENT_COUNTS, "terminal_id", events)
    wait_checkpointed(run)


def wait_checkpointed(run: PipelineRun, timeout: float = 90) -> None:
    run.wait_until_checkpointed(topics.PAYMENT_COUNTS, timeout)
    wait_until_consumed(
        run.kafka_settings, [by_group_topic(run.kafka_settings, "payments")], timeout
    )


def wait_for_idle_announced(run: PipelineRun, partition: int, timeout: float = 60) -> None:
    """Until a router's watermark on the payments re-key topic says input `partition` is idle."""
    topic = by_group_topic(run.kafka_settings, "payments")
    consumer = KafkaConsumer(bootstrap_servers=run.bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(run.partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while True:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    if is_watermark(record.headers):
                        _, clocks = read_watermark(record.value)
                        if clocks.get(partition, (None, False))[1]:
                            return
            assert time.monotonic() < deadline, f"partition {partition} not idle in {timeout}s"
    finally:
        consumer.close()


def test_windows_distinct_terminals_duplicates_late_tallies_and_dead_letters(
    pipeline: PipelineRun,
) -> None:
    minute = MINUTE_MS
    first = tally(
        "t1",
        "VT-T-00001",
        T0,
        counts={"cash": 4, "vietqr": 6},
        amounts={"cash": 200_000, "vietqr": 450_000},
    )
    phases = [
        [
            first,
            tally(
                "t2",
                "VT-T-00002",
                T0 + 5 * minute,
                15,
                counts={"vietqr": 3, "card": 1, "ewallet": 2, "bank_transfer": 1},
                amounts={"card": 1_000_000, "ewallet": 50_000},
            ),
            tally("t3", "VT-T-00001", T0 + 10 * minute, counts={"cash": 1}),  # same terminal
            dict(first),  # a re-sent copy: a duplicate
            tally(
                "t4",
                "VT-T-01575",
                T0,
                60,
                ward="phuong-1",
                category="utility_electricity",
                counts={"bank_transfer": 10, "ewallet": 5},
            ),  # exactly one hour
            # Starts at 07:55: the 07:00 window, although most of the period is after 08:00.
            tally(
                "t5",
                "VT-T-00100",
                T0 + 55 * minute,
                ward="thang-tam",
                category="restaurant",
                counts={"cash": 2, "card": 2},
            ),
            tally("t6", "VT-T-00002", T0 + HOUR_MS, counts={"vietqr": 1}),
            tally(
                "t7", "VT-T-00200", T0 + 30 * minute, ward="long-son", category="market", counts={}
            ),  # nothing sold: share 0
        ],
        # Stream time of the group's owner to 08:14:59, and a tally for 07:50: within grace.
        [
            tally("t8", "VT-T-00003", T0 + HOUR_MS + 15 * minute - 1000, counts={"card": 1}),
            tally("t9", "VT-T-00002", T0 + 50 * minute, counts={"vietqr": 2, "cash": 1}),
        ],
        # 08:15 on every input partition: the 07:00 windows close (end + 900 s grace).
        [
            tally("t10", "VT-T-00001", T0 + HOUR_MS + 15 * minute, counts={"ewallet": 1}),
            *(
                tally(f"t10-{t}", t, T0 + HOUR_MS + 15 * minute, ward="rach-dua", counts={})
                for t in closing_keys("VT-T-088", pipeline.partitions)
            ),
        ],
        # Late: dropped and counted, as is a copy of t1 now that its window has closed.
        [tally("t11", "VT-T-00001", T0 + 59 * minute, counts={"cash": 9}), dict(first)],
    ]
    worker = pipeline.start_worker()
    pipeline.produce(topics.PAYMENT_COUNTS, (("VT-T-00001", raw) for raw, _ in INVALID))
    expected = ExpectedCashless(pipeline.partitions)
    for events in phases:
        produce_and_wait(pipeline, events)
        expected.add_all(events)
    assert pipeline.stop_worker(worker) == 0

    t0 = T0 // 1000
    rows = cashless_rows(pipeline)
    assert rows == expected.rows()
    # The model agrees with the contract read by hand on the telling windows:
    # reports, terminals, cash, vietqr, card, ewallet, bank_transfer, cash amount,
    # cashless amount, share, final
    assert rows[("phuong-1", "grocery", t0)] == (
        4,
        2,
        6,
        11,
        1,
        2,
        1,
        200_000,
        1_500_000,
        15 / 21,
        1,
    )
    assert rows[("phuong-1", "grocery", t0 + 3600)][:3] == (3, 3, 0)
    assert rows[("thang-tam", "restaurant", t0)][:3] == (1, 1, 2)
    assert rows[("long-son", "market", t0)] == (1, 1, 0, 0, 0, 0, 0, 0, 0, 0.0, 1)
    assert rows[("phuong-1", "utility_electricity", t0)][2:7] == (0, 0, 0, 5, 10)

    letters = pipeline.rows(
        "SELECT source_topic, offset, error FROM vtops.dlq_events FINAL ORDER BY offset"
    )
    assert len(letters) == len(INVALID)
    for (_, field), (source, _, error) in zip(INVALID, letters, strict=True):
        assert source == pipeline.topic(topics.PAYMENT_COUNTS)
        assert error.startswith(f"{field}:"), (field, error)
    # Over both stages' topics, each message counts once as an event.
    counters = pipeline.rows("""
        SELECT sum(e), sum(l), sum(d), sum(i) FROM (
            SELECT argMax(events, offset) AS e, argMax(late, offset) AS l,
                   argMax(duplicates, offset) AS d, argMax(invalid, offset) AS i
            FROM vtops.pipeline_progress FINAL GROUP BY source_topic, partition)""")
    sent = len(INVALID) + sum(len(events) for events in phases)
    assert counters == [(sent, expected.late, expected.duplicates, len(INVALID))]
    assert (expected.late, expected.duplicates) == (2, 1)


def test_sigkill_mid_stream_keeps_payments_and_portal_exact(pipeline: PipelineRun) -> None:
    """Both re-keyed streams at once, the worker killed while they are in flight. No step
    is ever late here (all periods and days stay within grace of each other until the closing
    phase), so the interleaving of input partitions cannot change a result."""
    rng = random.Random(72)
    tallies = random_tallies(rng, 6_000, span_ms=74 * MINUTE_MS)  # 07:00-08:14: nothing late
    day = at("2024-09-14T06:00:00+07:00")
    dossiers = random_dossiers(rng, 800, day, span_ms=36 * HOUR_MS)  # all before 09-17 00:00
    chunks = 2  # one kill: a killed worker holds its partitions for the session timeout (10 s)
    for n in range(chunks):
        part = slice(n * len(tallies) // chunks, (n + 1) * len(tallies) // chunks)
        steps = slice(n * len(dossiers) // chunks, (n + 1) * len(dossiers) // chunks)
        pipeline.produce_events(topics.PAYMENT_COUNTS, "terminal_id", tallies[part])
        pipeline.produce_events(topics.PORTAL_TRANSACTIONS, "dossier_id", dossiers[steps])
        worker = pipeline.start_worker()
        if n < chunks - 1:
            pipeline.wait_for_progress(topics.PAYMENT_COUNTS)
            time.sleep(rng.uniform(0.2, 1.0))
            pipeline.stop_worker(worker, signal.SIGKILL)
    wait_checkpointed(pipeline, timeout=120)
    # Close every window: every input partition passes 09:15, and 09-20 for the portal.
    closing = [
        tally(f"close-{terminal}", terminal, T0 + 2 * HOUR_MS + 15 * MINUTE_MS)
        for terminal in closing_keys("VT-T-099", pipeline.partitions)
    ]
    closing_steps = [
        step(f"close-{dossier}", dossier, "2024-09-20T09:00:00+07:00", "rejected")
        for dossier in closing_keys("close-", pipeline.partitions)
    ]
    pipeline.produce_events(topics.PORTAL_TRANSACTIONS, "dossier_id", closing_steps)
    produce_and_wait(pipeline, closing)
    wait_until_consumed(
        pipeline.kafka_settings,
        [
            pipeline.topic(topics.PORTAL_TRANSACTIONS),
            by_group_topic(pipeline.kafka_settings, "portal"),
        ],
        90,
    )
    assert pipeline.stop_worker(worker) == 0

    expected = ExpectedCashless(pipeline.partitions)
    expected.add_all(tallies + closing)
    expected_portal = ExpectedPortal(pipeline.partitions)
    expected_portal.add_all(dossiers + closing_steps)
    assert expected.late == expected_portal.late == 0
    rows = cashless_rows(pipeline)
    assert rows == expected.rows()
    assert all(row[-1] == 1 for (_, _, start), row in rows.items() if start < (T0 // 1000) + 7200)
    assert kpi_rows(pipeline) == expected_portal.rows()
    late = pipeline.rows(
        "SELECT sum(l) FROM (SELECT argMax(late, offset) AS l "
        "FROM vtops.pipeline_progress FINAL GROUP BY source_topic, partition)"
    )
    assert late == [(0,)]


def test_an_idle_input_partition_stops_holding_windows_back(pipeline: PipelineRun) -> None:
    """Partition 0 of the input never gets a tally: once it has been caught up and silent for
    VTOPS_IDLE_PARTITION_S, the windows the other partitions have passed become final."""
    pipeline.extra_env["VTOPS_IDLE_PARTITION_S"] = "1"
    busy = [t for t in key_per_partition("VT-T-077", pipeline.partitions)[1:]]
    events = [tally(f"a-{t}", t, T0, counts={"cash": 1}) for t in busy]
    events += [tally(f"b-{t}", t, T0 + HOUR_MS + 15 * MINUTE_MS) for t in busy]
    worker = pipeline.start_worker()
    pipeline.wait_until_assigned(worker)
    produce_and_wait(pipeline, events)
    # Idle after 1 s, announced by the router's next checkpoint, windowed by the window
    # stage's checkpoint that commits the announcement: waited for, not slept for.
    wait_for_idle_announced(pipeline, 0)
    wait_checkpointed(pipeline)
    assert pipeline.stop_worker(worker) == 0
    rows = cashless_rows(pipeline)
    assert rows[("phuong-1", "grocery", T0 // 1000)][0] == len(busy)
    assert rows[("phuong-1", "grocery", T0 // 1000)][-1] == 1
    assert rows[("phuong-1", "grocery", T0 // 1000 + 3600)][-1] == 0
