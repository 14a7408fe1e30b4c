"""Forged records on payments' re-key topic, through the real broker and worker (issue 20
review): each is one dead letter, the worker's checkpoints go on (a forged offset past 64 bits
once made every later one fail), and the tallies around them count exactly once."""

from __future__ import annotations

import pytest
from kafka import KafkaProducer

from streams.app import by_group_topic
from streams.engine.records import FORWARDS, ORIGIN, encode_forwards, forwards_header
from tests.factories_payments import T0, ExpectedCashless, tally
from tests.pipeline import PipelineRun
from tests.streams.test_payments_pipeline import cashless_rows, produce_and_wait

pytestmark = pytest.mark.integration

HUGE = 10**30  # past every 64-bit integer


def test_forged_rekey_records_are_dead_letters_and_the_worker_goes_on(
    pipeline: PipelineRun,
) -> None:
    tallies = [tally(f"g{n}", f"VT-T-{n:05d}", T0, counts={"cash": 1}) for n in range(8)]
    worker = pipeline.start_worker()
    produce_and_wait(pipeline, tallies[:4])  # the re-key topic is made and read by now
    good = encode_forwards([(0, T0, b"{}")])
    forged = [
        (b"{}", [(ORIGIN, f"0,{HUGE},{T0}".encode())]),
        (b"{}", [(ORIGIN, f"-1,0,{T0}".encode())]),
        (good, [(FORWARDS, b"+0")]),
        (good[:-2], forwards_header(0)),
    ]
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
    topic = by_group_topic(pipeline.kafka_settings, "payments")
    for value, headers in forged:
        producer.send(topic, value=value, partition=0, headers=headers)
    producer.flush()
    producer.close()
    produce_and_wait(pipeline, tallies[4:])
    assert pipeline.stop_worker(worker) == 0

    expected = ExpectedCashless(pipeline.partitions)
    expected.add_all(tallies)
    assert cashless_rows(pipeline) == expected.rows()
    letters = pipeline.rows(
        f"SELECT error FROM vtops.dlq_events FINAL WHERE source_topic = '{topic}' ORDER BY offset"
    )
    assert [error.split(":")[0] for (error,) in letters] == [
        "headers",
        "headers",
        "headers",
        "payload",
    ]
