"""`vtops migrate`: bring the store's schema up to this release (the worker does it at start)."""

from __future__ import annotations

import json
import logging

from city.exceptions import VtopsError
from vtops.cli.output import Output, OutputOption, console, exit_with_error


def migrate_store(output: OutputOption = Output.table) -> None:
    """Apply the schema migrations the ClickHouse database has not had yet."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from city.profile import load_city_profile
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import LATEST, migrate
    from vtops.settings import get_settings

    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    settings = get_settings()
    storage = settings.storage
    database = storage.clickhouse_database
    try:
        profile = load_city_profile(settings.stream.city_profile)
        client = connect(storage)
    except VtopsError as error:
        exit_with_error(str(error))
    try:
        applied = migrate(client, database, timezone=profile.timezone)
    except VtopsError as error:
        exit_with_error(str(error))
    except ClickHouseError as error:
        exit_with_error(f"migrating {database} failed: {str(error).splitlines()[0]}")
    finally:
        client.close()
    if output is Output.json:
        report = {
            "database": database,
            "schema_version": LATEST,
            "applied": [{"version": m.version, "summary": m.summary} for m in applied],
        }
        console.print_json(json.dumps(report))
        return
    for migration in applied:
        console.print(f"applied {migration.version}: {migration.summary}", markup=False)
    state = "now" if applied else "already"
    console.print(f"ClickHouse database {database} is {state} at schema version {LATEST}")
