"""`vtops worker`: every stage of every stream in one process, until SIGINT or SIGTERM."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Annotated

import typer

from city.exceptions import VtopsError
from vtops.cli.output import exit_with_error
from vtops.log_format import LogFormat, logging_config

if TYPE_CHECKING:  # imported where used, as every command does: `vtops --help` stays fast
    from concurrent.futures import Executor

    from clickhouse_connect.driver.client import Client

    from city.profile import CityProfile
    from streams.traffic.anomaly.baselines import Baselines


def worker(
    loglevel: str = typer.Option("warning", help="Faust and pipeline log level"),
    log_format: Annotated[
        LogFormat,
        typer.Option(help="text lines, or one JSON object per line with the same fields"),
    ] = LogFormat.text,
) -> None:
    """Run the pipeline: consume the input topics, write windows to ClickHouse and Kafka."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from city.profile import load_city_profile
    from sinks.clickhouse.opening import open_store
    from streams.health.port import claim_metrics_port
    from vtops.settings import get_settings

    settings = get_settings()
    try:
        profile = load_city_profile(settings.stream.city_profile)
        # First, so that two workers starting together cannot pick the same port.
        metrics = claim_metrics_port(settings.stream)
        # Before the rest of the worker is imported and the broker asked: the store's
        # migrations run meanwhile, in its own thread (issue 20, P7).
        opened = open_store(settings.storage, profile.timezone)
        import faust

        from streams.app import consumed_topics, create_app
        from streams.engine.service import SESSION_TIMEOUT_S
        from vtops.kafka.offsets import group_stays_busy
        from vtops.kafka.topics import ensure_topics

        database = settings.storage.clickhouse_database
        app, _ = create_app(
            settings.kafka,
            settings.storage,
            settings.stream,
            profile,
            opened,
            # Alerts need baselines from the first minute: the priors until history is learned.
            bootstrap_baselines=lambda client, store: bootstrap_priors(
                client, database, profile, store
            ),
            metrics=metrics,
        )
        if settings.storage.embedded and group_stays_busy(
            settings.kafka, within_s=SESSION_TIMEOUT_S + 2
        ):
            # Each embedded store would hold part of the state, and a survivor would take
            # over partitions without theirs.
            raise VtopsError(
                f"another worker of group {settings.kafka.app_id!r} is running with its own "
                "embedded ClickHouse store: several workers need a ClickHouse server "
                "(VTOPS_CLICKHOUSE_URL)"
            )
        ensure_topics(settings.kafka, consumed_topics(settings.kafka, settings.stream, profile))
    except VtopsError as error:
        exit_with_error(str(error))
    except ClickHouseError as error:
        # The store's checks run before the worker is up (its migrations while it starts).
        exit_with_error(f"preparing the ClickHouse store failed: {str(error).splitlines()[0]}")
    freeze_what_started()
    # Faust's worker owns the signals: SIGINT/SIGTERM stop the app, whose shutdown hook
    # writes a last checkpoint before the producer is flushed and the process exits.
    faust.Worker(
        app, loglevel=loglevel, quiet=True, logging_config=logging_config(log_format)
    ).execute_from_commandline()


def bootstrap_priors(
    client: Client, database: str, profile: CityProfile, store: Executor
) -> Baselines | None:
    """The priors into a fresh store, in the thread that prepares it while the worker starts:
    imported there, so that the simulator's model (and numpy, for a worker on a server) load
    beside the start, not before it (issue 20, P7)."""
    from vtops.baselines import ensure_baselines

    return ensure_baselines(client, database, profile, store)


def freeze_what_started() -> None:
    """Keep the start's objects out of the collector's walks, and its garbage out of memory."""
    # What the start made (modules, the city profile, the baselines: ~200,000 objects)
    # lives as long as the process: frozen, the collector stops walking it at every full
    # collection, and young collections come every 20,000 allocations instead of 700. The
    # folds allocate a few objects an event and keep few; the collector took a third of the
    # routers' fold time (issue 20). Collected first: the start's garbage in cycles (the
    # ClickHouse driver's query results are, the baselines' ~24 MB of row tuples among them)
    # would otherwise be frozen with it and never freed.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
