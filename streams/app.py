"""The Faust worker: every domain stream's agent, its checkpoint timer and its sinks, wired once.

Agents and timers are registered explicitly here, not by import side effects.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from mode.utils.times import Seconds

from sinks.base import BatchSink
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import TABLES, migrate
from sinks.clickhouse.table import ClickHouseTable
from sinks.kafka_topic import KafkaForward, KafkaTopic
from streams.definition import WindowedStream
from streams.payments import CashlessPayments
from streams.portal import PortalKpis
from streams.repartition import Repartitioned, Repartitioner, repartition_topic
from streams.runtime import Sinks, StreamRunner
from streams.state_store import StateStore
from streams.traffic import TrafficFlow
from vtops import topics
from vtops.city import CityProfile
from vtops.kafka.topics import kafka_python_config
from vtops.settings import KafkaSettings, Settings

log = logging.getLogger(__name__)


def _ssl_context(kafka: KafkaSettings) -> Any:
    cafile = kafka.kafka_ssl_cafile
    return None if cafile is None else create_ssl_context(cafile=str(cafile))


def aiokafka_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection keywords for the plain aiokafka clients the worker uses beside Faust: the
    operator tools' kafka-python keywords, with the CA file turned into an SSL context."""
    config = dict(kafka_python_config(kafka))
    config.pop("ssl_cafile", None)
    config["ssl_context"] = _ssl_context(kafka)
    return config


def _broker_credentials(kafka: KafkaSettings) -> Any:
    if not kafka.kafka_security_protocol.startswith("SASL_"):
        return None
    password = kafka.kafka_sasl_password
    return faust.SASLCredentials(
        username=kafka.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=kafka.kafka_sasl_mechanism,
        ssl_context=_ssl_context(kafka),
    )


def domain_streams(settings: Settings, profile: CityProfile) -> list[WindowedStream[Any]]:
    return [
        TrafficFlow(profile, settings.stream.traffic_grace_s),
        CashlessPayments(profile, settings.stream.payments_grace_s),
        PortalKpis(settings.stream.portal_grace_s),
    ]


def consumed_topics(settings: Settings, profile: CityProfile) -> list[str]:
    """Every topic the worker consumes (broker-side names), inputs before the internal topics
    they feed: wait until the app's group has consumed them all, in this order, to know that
    every event sent so far is in ClickHouse."""
    streams = domain_streams(settings, profile)
    return [settings.kafka.topic(stream.source_topic) for stream in streams] + [
        repartition_topic(settings.kafka, stream.name)
        for stream in streams
        if isinstance(stream, Repartitioned)
    ]


def create_app(
    settings: Settings, profile: CityProfile
) -> tuple[faust.App, list[StreamRunner[Any]]]:
    kafka = settings.kafka
    app = faust.App(
        kafka.app_id,
        broker=[f"kafka://{host.strip()}" for host in kafka.kafka_bootstrap.split(",")],
        broker_credentials=_broker_credentials(kafka),
        store="memory://",
        web_enabled=False,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        # Our acks follow checkpoints; Faust must not wait for them while stopping or rebalancing.
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.stream.checkpoint_interval_s,
        producer_acks=-1,
        # A worker killed with SIGKILL holds its partitions until its session expires; keep
        # that short so a restarted or surviving worker takes over within seconds.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
    )
    storage = settings.storage
    client = connect(storage)
    migrate(client, storage.clickhouse_database)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
    tables: dict[str, BatchSink] = {
        name: ClickHouseTable(client, storage.clickhouse_database, name, executor)
        for name in TABLES
    }

    def raw_topic(name: str) -> Any:
        return app.topic(kafka.topic(name), key_serializer="raw", value_serializer="raw")

    def highwater(topic: str, partition: int) -> int:
        return int(app.consumer.highwater(faust.types.TP(topic, partition)) or 0)

    runners: list[StreamRunner[Any]] = []
    routers: list[Repartitioner] = []
    interval = settings.stream.checkpoint_interval_s
    for stream in domain_streams(settings, profile):
        source = kafka.topic(stream.source_topic)
        channel = raw_topic(stream.source_topic)
        dead_letters = KafkaTopic(
            raw_topic(topics.dead_letters_of(stream.source_topic)), app, "source_topic"
        )
        if isinstance(stream, Repartitioned):
            # Its windows span input partitions: re-key by window group first, and window the
            # internal topic (streams/repartition.py).
            by_group = app.topic(
                repartition_topic(kafka, stream.name),
                key_serializer="raw",
                value_serializer="raw",
                internal=True,
                partitions=kafka.partitions,
            )
            router = Repartitioner(
                stream,
                source,
                KafkaForward(by_group, app),
                tables,
                dead_letters,
                (client, storage.clickhouse_database),
                executor,
                settings.stream.max_pending_events,
                highwater,
            )
            _register(app, router, channel, f"vtops.{stream.name}.route", interval)
            routers.append(router)
            source, channel = repartition_topic(kafka, stream.name), by_group
        sinks = Sinks(
            tables=tables,
            output_topic=KafkaTopic(raw_topic(stream.output_topic), app, stream.output_key),
            dead_letter_topic=dead_letters,
        )
        store = StateStore(client, storage.clickhouse_database, executor, stream, source)
        runner = StreamRunner(
            stream,
            source,
            store,
            sinks,
            aiokafka_config(kafka),
            settings.stream.max_pending_events,
            highwater,
        )
        _register(app, runner, channel, f"vtops.{stream.name}", interval)
        runners.append(runner)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[Any] = args[0]
        stages: list[StreamRunner[Any] | Repartitioner] = [*routers, *runners]
        for stage in stages:
            await stage.on_revoked(tp.partition for tp in revoked if tp.topic == stage.topic)

    @app.on_before_shutdown.connect
    async def final_checkpoint(sender: Any, /, *_args: Any, signal: Any, **_: Any) -> None:
        # Routers first: what they forward now is windowed by the next start.
        stages: list[StreamRunner[Any] | Repartitioner] = [*routers, *runners]
        for stage in stages:
            await stage.checkpoint()
        executor.shutdown(wait=True)
        log.info("shutdown checkpoints written")

    return app, runners


def _register(
    app: faust.App,
    runner: StreamRunner[Any] | Repartitioner,
    source: Any,
    name: str,
    interval: Seconds,
) -> None:
    async def consume(events: Any) -> None:
        async for event in events.noack().events():
            await runner.on_event(event)

    async def checkpoint() -> None:
        await runner.checkpoint()

    # Faust labels an agent in its logs by the function's qualified name: make it the agent's.
    consume.__qualname__ = consume.__name__ = name
    app.agent(source, name=name)(consume)
    app.timer(interval, name=f"{name}.checkpoint")(checkpoint)
    log.info("registered agent=%s topic=%s", name, source.get_topic_name())
