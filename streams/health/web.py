"""/metrics, /healthz and /ready: a small aiohttp server in the worker's event loop.

- /healthz: 200 while the process runs and the engine has not failed; 503 once it has (the
  worker is about to exit 1). A liveness probe: restart on failure.
- /ready: 200 once partitions are assigned and their state is loaded; 503 before, during a
  rebalance, and after a failure. A readiness probe: whether this worker is consuming.
- /metrics: the Prometheus text format, by prometheus_client (streams/health/metrics.py).

The server runs in the same loop as the engine, so a view reads the engine's state between two
batches; a batch that blocks the loop delays the answer, which a probe's timeout reports.
It serves on the socket claimed at start (streams/health/port.py), not through Faust's web
server, which binds its port only once the app runs and cannot be handed a socket.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from mode import Service
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from sinks.base import BatchSink
from streams.engine.service import StreamEngine
from streams.health.metrics import worker_registry
from streams.health.port import MetricsListener

log = logging.getLogger(__name__)


class HealthPages(Service):
    """The three pages on `listener`, from the app's start to its stop."""

    def __init__(
        self,
        listener: MetricsListener,
        engine: StreamEngine,
        sinks: Sequence[BatchSink],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._listener = listener
        self._engine = engine
        self._registry = worker_registry(engine, sinks)
        pages = web.Application()
        pages.router.add_get("/healthz", self._healthz)
        pages.router.add_get("/ready", self._ready)
        pages.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(pages, access_log=None)

    async def on_start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._listener.socket).start()
        port, asked = self._listener.port, self._listener.asked
        if port == asked:
            log.info("health and metrics pages port=%d", port)
        else:
            log.warning(
                "health and metrics pages port=%d (the default %d is in use; "
                "set VTOPS_METRICS_PORT to fix it)",
                port,
                asked,
            )

    async def on_stop(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._engine.failed:
            return web.Response(text="engine failed\n", status=503)
        return web.Response(text="ok\n")

    async def _ready(self, request: web.Request) -> web.Response:
        engine = self._engine
        if engine.failed:
            return web.Response(text="engine failed\n", status=503)
        if not engine.ready:
            return web.Response(text="waiting for partitions\n", status=503)
        return web.Response(text=f"ready partitions={len(engine.assigned)}\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        # As a header: aiohttp refuses a charset inside `content_type`.
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        )
