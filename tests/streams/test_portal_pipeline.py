"""portal.transactions through the real broker and worker into the embedded ClickHouse.

Steps of one dossier share its key, so they keep their order; steps of different dossiers
reach their window's owner in no fixed order, so steps whose order matters across dossiers
(the one that closes a day, the late ones after it) go out in phases, each waiting until the
worker has checkpointed the last.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from city import topics
from streams.app import by_group_topic
from tests.factories_portal import ExpectedPortal, at, step
from tests.pipeline import BOOTSTRAP, PipelineRun, closing_keys
from vtops.kafka.offsets import wait_until_consumed

pytestmark = pytest.mark.integration

KPIS_SQL = """
    SELECT day, agency, procedure_code, submitted, submitted_online, submitted_full_online,
           submitted_vneid_l2, paid_online, resolved, resolved_signed, resolved_on_time,
           resolved_no_due, rejected, final
    FROM vtops.portal_kpis_1d FINAL"""

GOOD = step("bad", "D-bad", "2024-09-15T09:00:00+07:00", "submitted")
INVALID: list[tuple[bytes, str]] = [
    (b"", "payload"),
    (b"[]", "payload"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "channel"}), "channel"),
    (orjson.dumps({**GOOD, "channel": "fax"}), "channel"),
    (orjson.dumps({**GOOD, "status": "lost"}), "status"),
    (orjson.dumps({**GOOD, "ts": "2024-09-15T09:00:00"}), "ts"),
    (orjson.dumps({**GOOD, "due_at": "2024-09-20"}), "due_at"),
    (orjson.dumps({**GOOD, "auth": "password"}), "auth"),
    (orjson.dumps({**GOOD, "paid_online": "yes"}), "paid_online"),
    (orjson.dumps({**GOOD, "status": "resolved", "signed": 1}), "signed"),
    (orjson.dumps({**GOOD, "procedure_code": "x" * 33}), "procedure_code"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "agency"}), "agency"),
]
TU_PHAP = {"agency": "phong-tu-phap", "procedure_code": "2.000528"}


def kpi_rows(run: PipelineRun) -> dict[tuple[date, str, str], tuple[int, ...]]:
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in run.rows(KPIS_SQL)}


def produce_and_wait(run: PipelineRun, events: list[dict[str, Any]]) -> None:
    run.produce_events(topics.PORTAL_TRANSACTIONS, "dossier_id", events)
    run.wait_until_checkpointed(topics.PORTAL_TRANSACTIONS)
    wait_until_consumed(run.kafka_settings, [by_group_topic(run.kafka_settings, "portal")], 90)


def test_days_deadlines_duplicates_late_steps_and_dead_letters(pipeline: PipelineRun) -> None:
    d1_submitted = step(
        "D1-s",
        "D1",
        "2024-09-14T08:00:00+07:00",
        "submitted",
        service_level="full",
        auth="vneid_l2",
        paid_online=True,
    )
    phases = [
        [
            d1_submitted,
            step(
                "D1-a",
                "D1",
                "2024-09-14T09:00:00+07:00",
                "accepted",
                due_at="2024-09-14T12:00:00+07:00",
            ),
            dict(d1_submitted),  # a re-sent copy: a duplicate
            step(
                "D1-x",
                "D1",
                "2024-09-14T11:00:00+07:00",
                "supplement_requested",
                due_at="2024-09-16T17:00:00+07:00",
            ),
            # No due_at: the latest earlier one (09-16 17:00) applies, not the first: on time.
            step("D1-r", "D1", "2024-09-16T10:00:00+07:00", "resolved", signed=True),
            # D2's deadline moves at 15:00, but it was resolved at 13:00 against 12:00: late.
            step(
                "D2-a",
                "D2",
                "2024-09-15T09:00:00+07:00",
                "accepted",
                due_at="2024-09-15T12:00:00+07:00",
            ),
            step(
                "D2-x",
                "D2",
                "2024-09-15T15:00:00+07:00",
                "supplement_requested",
                due_at="2024-09-19T17:00:00+07:00",
            ),
            step("D2-r", "D2", "2024-09-15T13:00:00+07:00", "resolved", signed=True),
            # A resolution's own due_at wins over the dossier's: one second late.
            step(
                "D3-a",
                "D3",
                "2024-09-15T08:00:00+07:00",
                "accepted",
                due_at="2024-09-20T17:00:00+07:00",
            ),
            step(
                "D3-r",
                "D3",
                "2024-09-15T16:00:00+07:00",
                "resolved",
                signed=True,
                due_at="2024-09-15T15:59:59+07:00",
            ),
            # Resolved at the very instant of its deadline, written in UTC: on time.
            step(
                "D4-r",
                "D4",
                "2024-09-15T09:00:00Z",
                "resolved",
                signed=False,
                due_at="2024-09-15T16:00:00+07:00",
            ),
            step("D5-r", "D5", "2024-09-15T10:00:00+07:00", "resolved"),  # no deadline known
            step("D5-w", "D5", "2024-09-15T10:30:00+07:00", "withdrawn"),
            step("D6-j", "D6", "2024-09-15T11:00:00+07:00", "rejected"),
            # Midnight in Asia/Ho_Chi_Minh, written with either offset or as epoch ms.
            step(
                "D7-s",
                "D7",
                "2024-09-14T23:59:59+07:00",
                "submitted",
                channel="counter",
                auth="none",
            ),
            step("D8-s", "D8", "2024-09-15T00:00:00+07:00", "submitted", channel="postal"),
            step(
                "D9-s",
                "D9",
                "2024-09-14T17:00:00Z",
                "submitted",
                service_level="partial",
                auth="vneid_l1",
            ),
            step(
                "D10-s",
                "D10",
                at("2024-09-14T23:59:59.999+07:00"),
                "submitted",
                service_level="full",
                auth="vneid_l2",
                paid_online=False,
            ),
            step(
                "D20-s",
                "D20",
                "2024-09-14T14:00:00+07:00",
                "submitted",
                **TU_PHAP,
                service_level="full",
                auth="vneid_l2",
            ),
            step(
                "D20-r",
                "D20",
                "2024-09-15T14:00:00+07:00",
                "resolved",
                **TU_PHAP,
                signed=True,
                due_at="2024-09-17T17:00:00+07:00",
            ),
        ],
        # Stream time to a second before 09-14 closes, and a step for 09-14: within grace.
        [
            step("D11-s", "D11", "2024-09-16T23:59:59+07:00", "submitted"),
            step("D12-s", "D12", "2024-09-14T12:00:00+07:00", "submitted", channel="counter"),
        ],
        # 09-17 00:00 on every input partition: 09-14 has ended two days (the grace) ago for
        # all of them, and closes.
        [
            step(f"{dossier}-s", dossier, "2024-09-17T00:00:00+07:00", "submitted")
            for dossier in closing_keys("D13-", pipeline.partitions)
        ],
        # Late by their dossiers' partitions: dropped and counted. D14's deadline is still
        # learnt from its late step.
        [
            step(
                "D14-a",
                "D14",
                "2024-09-14T10:00:00+07:00",
                "accepted",
                due_at="2024-09-20T17:00:00+07:00",
            ),
            step("D15-s", "D15", "2024-09-14T15:00:00+07:00", "submitted"),
            dict(d1_submitted),
        ],
        [step("D14-r", "D14", "2024-09-17T10:00:00+07:00", "resolved", signed=True)],
    ]
    worker = pipeline.start_worker()
    pipeline.produce(topics.PORTAL_TRANSACTIONS, (("D-bad", raw) for raw, _ in INVALID))
    expected = ExpectedPortal(pipeline.partitions)
    for events in phases:
        produce_and_wait(pipeline, events)
        expected.add_all(events)
    assert pipeline.stop_worker(worker) == 0

    rows = kpi_rows(pipeline)
    assert rows == expected.rows()
    ward, sep14, sep15 = ("ubnd-phuong-1", "1.001193"), date(2024, 9, 14), date(2024, 9, 15)
    # submitted, online, full online, vneid_l2, paid online, resolved, signed, on time,
    # no due, rejected, final
    assert rows[(sep14, *ward)] == (4, 2, 2, 2, 1, 0, 0, 0, 0, 0, 1)  # D1, D7, D10, D12
    assert rows[(sep15, *ward)] == (2, 1, 0, 0, 0, 4, 2, 1, 1, 1, 0)  # D8, D9; D2-D6
    assert rows[(date(2024, 9, 16), *ward)][5:9] == (1, 1, 1, 0)  # D1 on time
    assert rows[(date(2024, 9, 17), *ward)][5:9] == (1, 1, 1, 0)  # D14 on time
    assert (expected.duplicates, expected.late) == (1, 3)

    letters = pipeline.rows("SELECT offset, error FROM vtops.dlq_events FINAL ORDER BY offset")
    assert [error.split(":")[0] for _, error in letters] == [field for _, field in INVALID]
    counters = pipeline.rows("""
        SELECT sum(l), sum(d), sum(i) FROM (
            SELECT argMax(late, offset) AS l, argMax(duplicates, offset) AS d,
                   argMax(invalid, offset) AS i
            FROM vtops.pipeline_progress FINAL GROUP BY source_topic, partition)""")
    assert counters == [(expected.late, expected.duplicates, len(INVALID))]

    # The output topic: keyed by agency, `day` as an ISO date, the latest version last.
    consumer = KafkaConsumer(
        pipeline.topic(topics.PORTAL_KPIS_1D),
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for message in consumer:
        row = orjson.loads(message.value)
        assert message.key.decode() == row["agency"]
        key = (row["day"], row["agency"], row["procedure_code"])
        if key not in latest or row["version"] > latest[key]["version"]:
            latest[key] = row
    consumer.close()
    assert latest[("2024-09-14", *ward)]["submitted"] == 4
    assert latest[("2024-09-14", *ward)]["final"] == 1
