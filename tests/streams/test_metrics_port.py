"""Several workers on one host with the default settings: each claims its own metrics port."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import cast

import pytest

from streams.engine.service import StreamEngine
from streams.engine.state_store import StateStore
from streams.health.exceptions import MetricsPortError
from streams.health.port import DEFAULT_PORT_RANGE, MetricsListener, claim_metrics_port
from streams.health.web import HealthPages
from streams.settings import StreamSettings

DEFAULT = StreamSettings.model_fields["metrics_port"].default


def _claim() -> MetricsListener:
    """A claim with the default port, as a worker started without settings makes."""
    listener = claim_metrics_port(StreamSettings(metrics_bind="127.0.0.1"))
    assert listener is not None
    return listener


def _engine() -> StreamEngine:
    # Never started: the pages only read its flags and (no) stages.
    return StreamEngine(
        cast(StateStore, None),
        {},
        group_id="test-metrics-port",
        checkpoint_interval_s=1.0,
        max_pending_events=1000,
        stall_timeout_s=60.0,
        exclusive=False,
    )


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        body: bytes = answer.read()
        return body.decode()


def test_two_workers_with_default_settings_serve_their_pages_on_two_ports() -> None:
    first, second = _claim(), _claim()
    try:
        ports = {first.port, second.port}
        assert len(ports) == 2
        assert all(DEFAULT <= port < DEFAULT + DEFAULT_PORT_RANGE for port in ports)
        assert first.asked == second.asked == DEFAULT

        async def serve_both() -> list[str]:
            pages = [HealthPages(listener, _engine(), []) for listener in (first, second)]
            for page in pages:
                await page.start()
            try:
                return [
                    await asyncio.to_thread(_get, port, path)
                    for port in (first.port, second.port)
                    for path in ("/healthz", "/metrics")
                ]
            finally:
                for page in pages:
                    await page.stop()

        healthz1, metrics1, healthz2, metrics2 = asyncio.run(serve_both())
        assert healthz1 == healthz2 == "ok\n"
        assert "# TYPE vtops_ready gauge" in metrics1 and "# TYPE vtops_ready gauge" in metrics2
    finally:
        first.socket.close()
        second.socket.close()


def test_a_port_the_operator_set_is_never_moved() -> None:
    taken = _claim()
    try:
        with pytest.raises(MetricsPortError) as refused:
            claim_metrics_port(StreamSettings(metrics_port=taken.port, metrics_bind="127.0.0.1"))
        assert str(refused.value) == (
            f"VTOPS_METRICS_PORT: port {taken.port} on 127.0.0.1 is in use (another worker?); "
            "choose a free port, or 0 to serve no metrics"
        )
    finally:
        taken.socket.close()


def test_port_zero_serves_no_pages() -> None:
    assert claim_metrics_port(StreamSettings(metrics_port=0)) is None
