"""The port of the worker's health and metrics pages, claimed before anything else starts.

Several workers on one host (a laptop, a test, a VM running `--scale worker=3`) must start
with the default settings: when VTOPS_METRICS_PORT is left at its default and that port is
taken, the worker listens on the next free one of a small range and logs it. A port the
operator set is the one a scrape job or a probe points at, so it is used or refused in one
line, never moved.

The socket is bound and listening from the claim on, and the pages are served on it: two
workers starting at the same moment cannot both pick the same free port.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from streams.health.exceptions import MetricsPortError
from streams.settings import StreamSettings

# Ports tried after the default one: enough for the workers one host runs.
DEFAULT_PORT_RANGE = 16


@dataclass(frozen=True)
class MetricsListener:
    """A listening socket for the pages, and the port that was asked for."""

    socket: socket.socket
    asked: int

    @property
    def port(self) -> int:
        port: int = self.socket.getsockname()[1]
        return port


def _listen(bind: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
    try:
        # As aiohttp binds: a port left in TIME_WAIT by a worker that just stopped is free.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((bind, port))
        listener.listen(128)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


def claim_metrics_port(settings: StreamSettings) -> MetricsListener | None:
    """The listening socket of the pages; None when VTOPS_METRICS_PORT is 0. MetricsPortError,
    in one line, when no port can be had."""
    asked, bind = settings.metrics_port, settings.metrics_bind
    if asked == 0:
        return None
    movable = "metrics_port" not in settings.model_fields_set
    last = min(asked + DEFAULT_PORT_RANGE - 1, 65535) if movable else asked
    for port in range(asked, last + 1):
        try:
            return MetricsListener(_listen(bind, port), asked)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                continue
            # A bind address this host does not have, a privileged port.
            raise MetricsPortError(
                f"VTOPS_METRICS_PORT: cannot listen on port {port} on {bind}: "
                f"{error.strerror}; choose a free port, or 0 to serve no metrics"
            ) from None
    where = f"port {asked} on {bind} is" if last == asked else f"ports {asked}-{last} on {bind} are"
    raise MetricsPortError(
        f"VTOPS_METRICS_PORT: {where} in use (another worker?); "
        "choose a free port, or 0 to serve no metrics"
    )
