"""/metrics, /healthz and /ready on Faust's web server (aiohttp, in the worker's event loop).

- /healthz: 200 while the process runs and the engine has not failed; 503 once it has (the
  worker is about to exit 1). A liveness probe: restart on failure.
- /ready: 200 once partitions are assigned and their state is loaded; 503 before, during a
  rebalance, and after a failure. A readiness probe: whether this worker is consuming.
- /metrics: the Prometheus text format (streams/health/metrics.py).

The server runs in the same loop as the engine, so a view reads the engine's state between two
batches; a batch that blocks the loop delays the answer, which a probe's timeout reports.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from typing import Any

import faust
from faust.web import Request, Response, View

from sinks.base import BatchSink
from streams.engine.service import StreamEngine
from streams.health.exceptions import MetricsPortError
from streams.health.exposition import CONTENT_TYPE, render
from streams.health.metrics import worker_metrics
from streams.settings import StreamSettings


def web_options(settings: StreamSettings) -> dict[str, Any]:
    """Faust's web settings: our three pages on the metrics port, none of Faust's own views
    (they describe Faust's agents and tables, which the engine does not use)."""
    return {
        "web_enabled": settings.metrics_port > 0,
        "web_port": settings.metrics_port or None,
        "web_bind": settings.metrics_bind,
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_graph_enabled": False,
        "web_stats_enabled": False,
        "web_metrics_enabled": False,
    }


def ensure_port_free(settings: StreamSettings) -> None:
    """MetricsPortError, in one line, when the worker cannot listen on its metrics port: Faust
    would otherwise stop the worker with a traceback once it is half started."""
    if settings.metrics_port == 0:
        return
    with socket.socket() as probe:
        # As aiohttp binds: a port left in TIME_WAIT by a worker that just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.metrics_bind, settings.metrics_port))
        except OSError as error:
            where = f"port {settings.metrics_port} on {settings.metrics_bind}"
            if error.errno == errno.EADDRINUSE:
                reason = f"{where} is in use (another worker?)"
            else:  # a bind address this host does not have, a privileged port
                reason = f"cannot listen on {where}: {error.strerror}"
            raise MetricsPortError(
                f"VTOPS_METRICS_PORT: {reason}; choose a free port, or 0 to serve no metrics"
            ) from None


def serve_health(app: faust.App, engine: StreamEngine, sinks: Sequence[BatchSink]) -> None:
    """Add the pages to `app`; they are served when its web server is enabled."""
    watched = list({id(sink): sink for sink in sinks}.values())

    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        if engine.failed:
            return view.text("engine failed\n", status=503)
        return view.text("ok\n")

    @app.page("/ready")
    async def ready(view: View, request: Request) -> Response:
        if engine.failed:
            return view.text("engine failed\n", status=503)
        if not engine.ready:
            return view.text("waiting for partitions\n", status=503)
        return view.text(f"ready partitions={len(engine.assigned)}\n")

    @app.page("/metrics")
    async def metrics(view: View, request: Request) -> Response:
        body = render(worker_metrics(engine, watched))
        # As a header: aiohttp refuses a charset inside `content_type`.
        return view.bytes(body.encode(), headers={"Content-Type": CONTENT_TYPE})
