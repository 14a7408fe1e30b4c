"""The Faust worker: the app, its producer, and the stream engine service with every stage.

Faust is the framework users see (`vtops worker`, signals, logging, the producer); the hot path
is the engine service (streams/engine/service.py), which reads every stage's topic in batches.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import faust
from clickhouse_connect.driver.client import Client
from mode import Service

from city import topics
from city.kafka_client import kafka_python_config
from city.profile import CityProfile
from city.settings import KafkaSettings
from sinks.base import BatchSink
from sinks.clickhouse.migrations import TABLES
from sinks.clickhouse.opening import OpenedStore
from sinks.clickhouse.table import ClickHouseTable
from sinks.kafka_topic import DeadLetterTopic, KafkaRecords, KafkaTopic
from sinks.settings import StorageSettings
from streams.engine.checkpoint import Stage, StageSinks
from streams.engine.definition import DomainStream
from streams.engine.service import StreamEngine
from streams.engine.stages import stream_stages
from streams.engine.state_store import StateStore
from streams.health.port import MetricsListener
from streams.health.web import HealthPages
from streams.payments import CashlessPayments
from streams.portal import PortalKpis
from streams.settings import StreamSettings
from streams.traffic.anomaly.baselines import NO_BASELINES, Baselines, BaselineSource, read_versions
from streams.traffic.anomaly.reader import BaselineReader
from streams.traffic.anomaly.timeline import StoredVersions, load_baselines
from streams.traffic.flow import TrafficFlow

log = logging.getLogger(__name__)

# The Kafka sinks hand the producer whole batches (sinks/kafka_topic.py), and a partition takes
# its next batch only once the one before is on its way: at Kafka's 16 KiB, a checkpoint's
# 125,000 forwards were 2,000 batches, ~330 round trips per partition (3.4 s). Below the
# broker's 1 MiB message limit.
PRODUCER_BATCH_BYTES = 512 * 1024

# Puts the baseline priors into a migrated store whose baselines table is empty, in a thread of
# its own while the worker starts, asking the store through the executor it is given (the
# store's one thread); returns the version it wrote, if it wrote one.
BootstrapBaselines = Callable[[Client, Executor], Baselines | None]


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS of every aiokafka client of the worker, Faust's producer and the engine's
    consumers alike: the configured CA file, else the system's CAs; None without TLS."""
    if kafka.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    cafile = kafka.kafka_ssl_cafile
    return ssl.create_default_context(cafile=None if cafile is None else str(cafile))


def aiokafka_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection keywords for the plain aiokafka clients the worker uses beside Faust: the
    operator tools' kafka-python keywords, with the CA file turned into an SSL context."""
    config = dict(kafka_python_config(kafka))
    config.pop("ssl_cafile", None)
    config["ssl_context"] = ssl_context(kafka)
    return config


def broker_credentials(kafka: KafkaSettings, tls: ssl.SSLContext | None) -> Any:
    """Faust's credentials, from which it derives its clients' security protocol: SASL
    credentials are SASL_SSL only when they carry a context, and without credentials Faust
    speaks PLAINTEXT."""
    if kafka.kafka_security_protocol.startswith("SASL_"):
        password = kafka.kafka_sasl_password
        return faust.SASLCredentials(
            username=kafka.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=kafka.kafka_sasl_mechanism,
            ssl_context=tls,
        )
    return None if tls is None else faust.SSLCredentials(tls)


def domain_streams(
    stream: StreamSettings, profile: CityProfile, baselines: BaselineSource = NO_BASELINES
) -> list[DomainStream[Any, Any]]:
    """The city's streams; the baselines matter only to a worker's anomaly rules."""
    return [
        TrafficFlow(profile, stream.traffic_grace_s, baselines),
        CashlessPayments(profile, stream.payments_grace_s),
        PortalKpis(profile, stream.portal_grace_s),
    ]


def by_group_topic(kafka: KafkaSettings, stream_name: str) -> str:
    """The re-key topic of a stream's window stage, per app id (like Faust's own topics)."""
    return kafka.topic(f"{kafka.app_id}.{stream_name}.by-group")


def consumed_topics(
    kafka: KafkaSettings, stream_settings: StreamSettings, profile: CityProfile
) -> list[str]:
    """Every topic the worker consumes (broker-side names), inputs before the internal topics
    they feed: wait until the app's group has consumed them all, in this order, to know that
    every event sent so far is in ClickHouse."""
    streams = domain_streams(stream_settings, profile)
    return [kafka.topic(stream.source_topic) for stream in streams] + [
        by_group_topic(kafka, stream.name) for stream in streams if stream.rekeyed
    ]


def start_with(app: faust.App, service: Service) -> None:
    """Have `app` start `service` once it has started itself, and stop it before it stops: what
    `app.service` does, without its registration for `app.discover` (which the worker does not
    use): that reads the caller's source and maps every loaded module to its file, ~0.1 s of a
    worker's start (issue 20, P7)."""
    # Faust's list holds classes or instances (it starts either: `_prepare_subservice`).
    app._extra_services.append(service)  # type: ignore[arg-type]


def _prepare_store(
    client: Client,
    database: str,
    store_thread: Executor,
    migrated: Future[Any],
    bootstrap: BootstrapBaselines | None,
) -> StoredVersions:
    """The baselines as the streams will find them: once the schema is made, the priors put
    into an empty store, then the versions read. Runs in a thread of its own while the worker
    starts: computing the priors holds no store call, and the state's load at the first
    assignment comes between its calls."""
    migrated.result()
    written = None if bootstrap is None else bootstrap(client, store_thread)
    return StoredVersions(store_thread.submit(read_versions, client, database).result(), written)


def create_app(
    kafka: KafkaSettings,
    storage: StorageSettings,
    stream_settings: StreamSettings,
    profile: CityProfile,
    opened: OpenedStore,
    bootstrap_baselines: BootstrapBaselines | None = None,
    metrics: MetricsListener | None = None,
) -> tuple[faust.App, StreamEngine]:
    """The worker's app and engine, on the store `opened` (sinks/clickhouse/opening.py);
    `bootstrap_baselines` puts the priors into a fresh store, `metrics` is where the health and
    metrics pages are served, if anywhere.

    The store is migrated and its baselines prepared while the worker starts and folds its
    first events (issue 20, P7): the engine's state store waits for the migrations, so nothing
    is read or written before the tables exist, and the anomaly watch for the baselines
    (streams/traffic/anomaly/baselines.py), so no minute is judged without them."""
    client_config = aiokafka_config(kafka)
    app = faust.App(
        kafka.app_id,
        broker=[f"kafka://{host.strip()}" for host in kafka.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(kafka, client_config["ssl_context"]),
        store="memory://",
        # Faust makes `<app id>-data` in the working directory otherwise.
        datadir=storage.data_dir / "faust",
        # The health pages have their own server (streams/health/web.py).
        web_enabled=False,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        producer_acks=-1,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
    )
    # Faust's own consumer would join the app's group beside the engine's, with another
    # assignor; the engine is the only consumer, Faust brings the producer (and web server).
    app.producer_only = True
    client, executor, migrated = opened.client, opened.thread, opened.migrated
    database = storage.clickhouse_database
    preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-preparation")
    stored = preparing.submit(
        _prepare_store, client, database, executor, migrated, bootstrap_baselines
    )
    preparing.shutdown(wait=False)
    tables: dict[str, BatchSink] = {
        name: ClickHouseTable(client, database, name, executor) for name in TABLES
    }
    embedded_at = storage.clickhouse_path.resolve() if storage.embedded else None
    store = StateStore(client, database, executor, embedded_at, migrated)
    stages: list[Stage] = []
    sinks = list(tables.values())  # every sink, for the retries /metrics reports
    engine = StreamEngine(
        store,
        client_config,
        group_id=kafka.app_id,
        checkpoint_interval_s=stream_settings.checkpoint_interval_s,
        max_pending_events=stream_settings.max_pending_events,
        stall_timeout_s=stream_settings.stall_timeout_s,
        exclusive=storage.embedded,
    )
    producer = app.producer
    baselines = load_baselines(client, database, executor, stored)
    for stream in domain_streams(stream_settings, profile, baselines):
        source = kafka.topic(stream.source_topic)
        dead_letters = DeadLetterTopic(
            kafka.topic(topics.dead_letters_of(stream.source_topic)), producer
        )
        # A re-keyed stream's windows span input partitions: its router re-keys by window
        # group first, and its window stage reads the internal topic.
        by_group = by_group_topic(kafka, stream.name) if stream.rekeyed else None
        forwards = None if by_group is None else KafkaRecords(by_group, producer)
        output = KafkaTopic(kafka.topic(stream.output_topic), producer, stream.output_key)
        record_topics: dict[str, BatchSink] = {
            table: KafkaTopic(kafka.topic(topic), producer, key_field)
            for table, (topic, key_field) in stream.record_topics.items()
        }
        sinks += [*([] if forwards is None else [forwards]), output, dead_letters]
        sinks += record_topics.values()
        made = stream_stages(
            stream,
            source,
            by_group,
            StageSinks(tables, output, dead_letters, record_topics),
            forwards,
            store,
            client_config,
            stream_settings,
            engine.highwater,
            engine.partitions_of,
        )
        stages += made.all
    engine.register(stages)
    # Faust starts and stops the engine with the app, then the others.
    start_with(app, engine)
    start_with(
        app,
        BaselineReader(
            baselines,
            client,
            database,
            executor,
            stream_settings.baselines_refresh_minutes * 60,
        ),
    )
    if metrics is not None:
        start_with(app, HealthPages(metrics, engine, sinks))

    return app, engine
