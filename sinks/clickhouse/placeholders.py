"""SQL written once for any store: `{db}` where the database's name goes, `{tz}` the city's zone.

The migrations, the baselines' history query and the dashboards' panels and alert rules are
text with these two placeholders; `fill` is the one place they become a store's names. Both
values reach SQL as literals, where query parameters cannot go (a type, a table name), so
both are checked here: the database is a plain identifier, the zone an IANA name.
"""

from __future__ import annotations

import re
from typing import Final

from city.profile import ZONE_NAME
from sinks.exceptions import SinkError

DATABASE: Final = "{db}"
TIMEZONE: Final = "{tz}"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_database(database: str) -> str:
    if not _IDENTIFIER.fullmatch(database):
        raise SinkError(f"VTOPS_CLICKHOUSE_DATABASE: not a plain identifier: {database!r}")
    return database


def fill(sql: str, database: str, timezone: str) -> str:
    """`sql` for the store `database` of a city in `timezone` (an IANA name)."""
    if not ZONE_NAME.fullmatch(timezone):
        raise SinkError(f"timezone: not an IANA time zone name: {timezone!r}")
    return sql.replace(DATABASE, check_database(database)).replace(TIMEZONE, timezone)
