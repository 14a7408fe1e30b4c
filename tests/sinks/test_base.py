"""The one retry loop of every sink, and the retry count /metrics reports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from sinks.base import Backoff, BatchSink, Row
from sinks.exceptions import SinkError, TransientSinkError


class Flaky(BatchSink):
    def __init__(self, failures: int, error: type[SinkError] = TransientSinkError) -> None:
        super().__init__(Backoff(first_s=0.001, max_s=0.001))
        self.name = "traffic_flow_1m"
        self.failures = failures
        self.error = error
        self.written: list[Row] = []

    async def write(self, batch: Sequence[Row]) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error("the store is down")
        self.written.extend(batch)


def test_transient_failures_are_retried_and_counted() -> None:
    sink = Flaky(failures=3)
    asyncio.run(sink.flush([{"camera_id": "VT-CAM-001"}]))
    assert sink.written == [{"camera_id": "VT-CAM-001"}]
    assert sink.retries == 3
    asyncio.run(sink.flush([{"camera_id": "VT-CAM-002"}]))
    assert sink.retries == 3  # a clean write adds nothing


def test_a_terminal_failure_is_raised_not_retried() -> None:
    sink = Flaky(failures=1, error=SinkError)
    with pytest.raises(SinkError):
        asyncio.run(sink.flush([{"camera_id": "VT-CAM-001"}]))
    assert sink.retries == 0 and sink.written == []
