"""Sending the sources' events to Kafka, paced by the simulated clock.

`run` is the loop: it asks the sources for one slice of city time after another, waits (when
pacing) until wall time × speed-up has reached the slice's end, and hands the events to a
sink. `KafkaSink` is the real sink; tests pass any object with `send`, `flush` and `close`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Protocol

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from city.exceptions import BrokerError
from city.kafka_client import admin_request, kafka_python_config
from city.settings import KafkaSettings
from simulator.clock import SimClock
from simulator.exceptions import SimulatorError
from simulator.sources import EventSource, SimEvent, merged_events

logger = logging.getLogger(__name__)

BOOTSTRAP_TIMEOUT_MS = 10_000
# Batches fill for up to 20 ms; a quarter-megabyte batch holds about 1,500 camera events.
PRODUCER_OPTIONS: dict[str, object] = {
    "client_id": "vtops-simulator",
    "acks": "all",
    "linger_ms": 20,
    "batch_size": 256 * 1024,
    "compression_type": None,
    # The contract's topics come from `vtops topics create`, with the run's partition count.
    # (kafka-python 3.0.12 does not pass this on to its metadata requests, so KafkaSink also
    # checks that the topics exist before it sends.)
    "allow_auto_create_topics": False,
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "max_block_ms": 15_000,
}
# How often the loop looks at the wall clock inside a large slice.
CHECK_EVERY_EVENTS = 2_048


class EventSink(Protocol):
    def send(self, event: SimEvent) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class KafkaSink:
    """Events to their contract topics (with the run's prefix), keyed by the contract's key."""

    def __init__(self, settings: KafkaSettings, topics: Sequence[str]) -> None:
        self._names = {topic: settings.topic(topic) for topic in topics}
        self.failed = 0
        self.first_error: BaseException | None = None
        _require_topics(settings, list(self._names.values()))
        try:
            self._producer = KafkaProducer(**kafka_python_config(settings), **PRODUCER_OPTIONS)
        except KafkaError as exc:
            raise BrokerError(
                f"no Kafka broker answers at {settings.kafka_bootstrap} ({type(exc).__name__}); "
                "start the local one with `vtops kafka start`"
            ) from exc

    def send(self, event: SimEvent) -> None:
        topic = self._names[event.topic]
        try:
            future = self._producer.send(
                topic, value=orjson.dumps(event.value), key=event.key.encode()
            )
        except KafkaError as exc:
            # Raised when the buffer stays full for max_block_ms: the broker stopped taking.
            raise BrokerError(f"sending to {topic!r} failed: {exc!r}") from exc
        future.add_errback(self._on_error)

    def _on_error(self, error: BaseException) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = error
            logger.error("delivery failed error=%r", error)

    def flush(self) -> None:
        self._producer.flush()
        if self.failed:
            raise SimulatorError(
                f"{self.failed} events were not delivered; first error: {self.first_error!r}"
            )

    def close(self) -> None:
        self._producer.close(timeout=10)


def _require_topics(settings: KafkaSettings, names: list[str]) -> None:
    """BrokerError, quickly, when nothing listens at the bootstrap or a topic is missing:
    sending to a missing topic would make the broker auto-create it with its defaults."""
    existing = admin_request(
        settings,
        f"listing topics on {settings.kafka_bootstrap}",
        lambda admin: set(admin.list_topics()),
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
    )
    missing = [name for name in names if name not in existing]
    if missing:
        raise BrokerError(
            f"topic {', '.join(missing)} does not exist on {settings.kafka_bootstrap}; "
            "create the contract's topics with `vtops topics create`"
        )


@dataclass(frozen=True)
class Progress:
    sent: int
    city_ms: int  # how far city time has been produced
    wall_s: float
    behind_s: float  # wall seconds the paced run lags its schedule (0 when keeping up)


@dataclass
class RunSummary:
    clock: SimClock
    paced: bool
    rate_scale: float
    by_kind: Counter[str] = field(default_factory=Counter)
    by_topic: Counter[str] = field(default_factory=Counter)
    first_event_ms: int | None = None
    last_event_ms: int | None = None
    city_end_ms: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    sent: int = 0
    max_behind_s: float = 0.0  # paced runs: how far the sink fell behind the clock at worst

    def count(self, event: SimEvent) -> None:
        self.sent += 1
        self.by_kind[event.kind] += 1
        self.by_topic[event.topic] += 1
        ts_ms = event.ts_ms
        if self.first_event_ms is None or ts_ms < self.first_event_ms:
            self.first_event_ms = ts_ms
        if self.last_event_ms is None or ts_ms > self.last_event_ms:
            self.last_event_ms = ts_ms

    def as_dict(self, tz: tzinfo) -> dict[str, object]:
        def shown(ms: int | None) -> str | None:
            if ms is None:
                return None
            return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")

        return {
            "events": self.sent,
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_topic": dict(sorted(self.by_topic.items())),
            "first_event": shown(self.first_event_ms),
            "last_event": shown(self.last_event_ms),
            "city_start": shown(self.clock.start_ms),
            "city_end": shown(self.city_end_ms),
            "wall_seconds": round(self.wall_s, 3),
            "events_per_wall_second": round(self.sent / self.wall_s, 1) if self.wall_s else None,
            "speedup": self.clock.speedup,
            "paced": self.paced,
            "rate_scale": round(self.rate_scale, 4),
            "max_behind_s": round(self.max_behind_s, 3),
            "interrupted": self.interrupted,
        }


def run(
    sources: Sequence[EventSource],
    clock: SimClock,
    sink: EventSink,
    *,
    duration_s: float,
    rate_scale: float = 1.0,
    pace: bool = True,
    max_events: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 1.0,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Produce city time slice by slice until the run ends, then flush the sink.

    Paced, the run covers duration_s × speed-up of city time and keeps step with the wall
    clock; unpaced, it produces as fast as the sink takes events for duration_s wall seconds.
    Either way it stops early after `max_events`, or on Ctrl-C (summary.interrupted).
    """
    summary = RunSummary(clock=clock, paced=pace, rate_scale=rate_scale)
    began = monotonic()
    last_report = began
    city = clock.start_ms
    span_end = clock.start_ms + clock.span_ms(duration_s)
    behind = 0.0

    def report() -> None:
        nonlocal last_report
        last_report = monotonic()
        if progress is not None:
            progress(Progress(summary.sent, summary.city_end_ms, last_report - began, behind))

    try:
        while (city < span_end) if pace else (monotonic() - began < duration_s):
            end = min(city + clock.slice_ms, span_end) if pace else city + clock.slice_ms
            if pace:
                wait = clock.wall_s(end) - (monotonic() - began)
                if wait > 0:
                    sleep(wait)
                behind = max(0.0, -wait)
                summary.max_behind_s = max(summary.max_behind_s, behind)
            for event in merged_events(sources, city, end, rate_scale):
                sink.send(event)
                summary.count(event)
                if summary.sent == max_events:
                    break
                if summary.sent % CHECK_EVERY_EVENTS == 0:
                    summary.city_end_ms = event.ts_ms
                    if not pace and monotonic() - began >= duration_s:
                        break
                    if monotonic() - last_report >= progress_every_s:
                        report()
            else:
                # The whole slice went out: city time has reached its end.
                summary.city_end_ms = city = end
                if monotonic() - last_report >= progress_every_s:
                    report()
                continue
            summary.city_end_ms = summary.last_event_ms or city
            break
    except KeyboardInterrupt:
        summary.interrupted = True
        summary.city_end_ms = summary.last_event_ms or city
    logger.info("simulation produced events=%d city_end_ms=%d", summary.sent, summary.city_end_ms)
    sink.flush()
    summary.wall_s = monotonic() - began
    return summary
