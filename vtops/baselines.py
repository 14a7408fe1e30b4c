"""Traffic baselines learned from the city's own history, with the simulator's priors beneath.

`vtops baselines refresh` learns, per camera × kind of day × 15-minute slot, the median and MAD
of vehicles per minute and of the minute mean speed, violations per vehicle and class shares
from `traffic_flow_1m FINAL`. Two things make history honest:
- a minute without a row is a minute without vehicles, but only while the pipeline was
  recording: a camera's sample minutes are the minutes of the day in which any camera has a
  row, on days the camera has any (an hour-long demo is not a day of empty streets);
- minutes inside alerts that ended (`traffic_alerts`, from the first anomalous minute to
  resolved_at) are left out, so an incident does not become the norm, and so are those of an
  incident an operator confirmed (`traffic_incidents`, `vtops alerts confirm`), while it is
  still open up to the end of history; an unconfirmed alert still open is not, because a camera
  whose level differs from its baseline would otherwise keep its alert open and its baseline
  unlearned for ever (issue 18), and medians tolerate a few bad minutes.
Slots with fewer than `min_samples` minutes take the prior (simulator/baseline_priors.py).
Every refresh writes all rows with one new `version` and the event time it is effective from;
earlier versions stay, so a replay judges each minute by the version effective then
(streams/traffic/anomaly/baselines.py). `ensure_baselines` puts the priors into an empty table,
effective since always.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from city.calendar import DAY_TYPES, DayType, day_type
from city.profile import CityProfile
from schemas.camera import VEHICLE_CLASSES
from simulator.baseline_priors import baseline_row, prior_baselines, prior_columns
from sinks.clickhouse.placeholders import fill
from streams.traffic.anomaly.alerts import PARTITION_WIDE
from streams.traffic.anomaly.baselines import (
    BASELINES_TABLE,
    COLUMNS,
    PRIOR_SOURCE,
    Baselines,
    SlotBaseline,
    SlotKey,
)
from streams.traffic.anomaly.camera_level import PRIOR_VEHICLES

log = logging.getLogger(__name__)

HISTORY_SOURCE = "history"
# The priors an empty table starts from; any refresh (epoch seconds) supersedes them.
PRIOR_VERSION = 1

_MEDIAN = "'quantileExactInclusive(0.5)'"
_CLASS_SUMS = ", ".join(f"sum({c}) AS {c}_total" for c in VEHICLE_CLASSES)
_CLASS_FILLED = ", ".join(f"ifNull(f.{c}, 0) AS {c}" for c in VEHICLE_CLASSES)
# {db} and {tz} are the checked database and the city's zone (placeholders.fill); everything
# from outside arrives as a query parameter.
_HISTORY_SQL = f"""
WITH
    covered AS (
        SELECT DISTINCT window_start AS minute, toDate(window_start) AS day
        FROM {{db}}.traffic_flow_1m
    ),
    camera_days AS (
        SELECT DISTINCT camera_id, toDate(window_start) AS day FROM {{db}}.traffic_flow_1m
    ),
    alert_minutes AS (
        SELECT DISTINCT camera_id, toDateTime(arrayJoin(range(
            toUInt32(toStartOfMinute(first_anomalous_at)),
            -- a confirmed incident still open: up to the end of history
            toUInt32(ifNull(resolved_at,
                            (SELECT max(window_start) + 60 FROM {{db}}.traffic_flow_1m))),
            60
        )), '{{tz}}') AS minute
        -- alerts that ended, and incidents an operator confirmed (traffic_incidents) even
        -- while they last; an unconfirmed alert still open (for days, perhaps) is a shift
        FROM {{db}}.traffic_alerts FINAL
        WHERE resolved_at IS NOT NULL
            OR alert_id IN (SELECT alert_id FROM {{db}}.traffic_incidents)
    ),
    samples AS (
        SELECT d.camera_id AS camera_id, c.minute AS minute
        FROM camera_days AS d INNER JOIN covered AS c ON d.day = c.day
    ),
    kept AS (
        SELECT s.camera_id AS camera_id, s.minute AS minute
        FROM samples AS s LEFT ANTI JOIN alert_minutes AS a
            ON s.camera_id = a.camera_id AND s.minute = a.minute
        -- a partition-wide alert (site_offline, citywide_shift) leaves out every camera
        LEFT ANTI JOIN (
            SELECT DISTINCT minute FROM alert_minutes WHERE camera_id = '{PARTITION_WIDE}'
        ) AS w ON s.minute = w.minute
    ),
    filled AS (
        SELECT
            k.camera_id AS camera_id,
            multiIf(
                has({{sunday_holiday:Array(Date)}}, toDate(k.minute)), 'sunday_holiday',
                has({{saturday:Array(Date)}}, toDate(k.minute)), 'saturday',
                'weekday'
            ) AS day_type,
            intDiv(toHour(k.minute) * 60 + toMinute(k.minute), 15) AS slot,
            toFloat64(ifNull(f.vehicles, 0)) AS vehicles,
            f.avg_speed_kmh AS speed,
            ifNull(f.violations, 0) AS violations,
            {_CLASS_FILLED}
        FROM kept AS k LEFT JOIN (SELECT * FROM {{db}}.traffic_flow_1m FINAL) AS f
            ON k.camera_id = f.camera_id AND k.minute = f.window_start
    ),
    slots AS (
        SELECT
            camera_id, day_type, slot, count() AS samples,
            groupArray(vehicles) AS counts,
            groupArray(speed) AS speeds,  -- NULLs (no vehicle with a speed) are skipped
            sum(vehicles) AS vehicles_total, sum(violations) AS violations_total,
            {_CLASS_SUMS}
        FROM filled GROUP BY camera_id, day_type, slot
    )
SELECT
    camera_id, day_type, slot, samples,
    arrayReduce({_MEDIAN}, counts) AS vehicles_median,
    arrayReduce({_MEDIAN}, arrayMap(x -> abs(x - vehicles_median), counts)) AS vehicles_mad,
    if(empty(speeds), NULL, arrayReduce({_MEDIAN}, speeds)) AS speed_median,
    if(empty(speeds), 0, arrayReduce({_MEDIAN}, arrayMap(x -> abs(x - speed_median), speeds)))
        AS speed_mad,
    vehicles_total, violations_total,
    {", ".join(f"{c}_total" for c in VEHICLE_CLASSES)}
FROM slots
SETTINGS join_use_nulls = 1
"""


@dataclass(frozen=True)
class History:
    """What `traffic_flow_1m` says per camera × kind of day × slot (a row of _HISTORY_SQL),
    and how many days of each kind it covers."""

    slots: Mapping[SlotKey, Mapping[str, Any]]
    days: Mapping[DayType, int]


@dataclass(frozen=True)
class RefreshSummary:
    version: int
    effective_from: datetime
    from_history: int
    from_priors: int
    history_days: Mapping[DayType, int]


def learn_from_history(client: Client, database: str, timezone: str) -> History:
    """Every camera × kind of day × slot that history has minutes for."""
    days = [row[0] for row in client.query(
        f"SELECT DISTINCT toDate(window_start) FROM {database}.traffic_flow_1m"
    ).result_rows]  # fmt: skip
    if not days:
        return History({}, {})
    # Kinds of day come from city/calendar.py, into the SQL as parameters.
    kinds = {day: day_type(day) for day in days}
    result = client.query(
        fill(_HISTORY_SQL, database, timezone),
        parameters={
            "sunday_holiday": [d for d, kind in kinds.items() if kind == "sunday_holiday"],
            "saturday": [d for d, kind in kinds.items() if kind == "saturday"],
        },
    )
    slots = {(r["camera_id"], r["day_type"], r["slot"]): r for r in result.named_results()}
    return History(slots, dict(Counter(kinds.values())))


def history_baseline(row: Mapping[str, Any], prior: SlotBaseline) -> SlotBaseline:
    """History's baseline of a slot, with the prior's where history has nothing to say: rates
    and shares of a slot that never saw a vehicle, speeds of one that never saw a speed. The
    violation rate counts the prior's as `PRIOR_VEHICLES` vehicles, as the watch's own level
    does: a quiet night slot that saw no violation in a few dozen vehicles would otherwise
    expect none, and call the first five a spike (issue 18's perturbed-city benchmark)."""
    vehicles = row["vehicles_total"]
    speed_seen = row["speed_median"] is not None or prior.speed_kmh is None
    return SlotBaseline(
        vehicles=row["vehicles_median"],
        vehicles_mad=row["vehicles_mad"],
        speed_kmh=row["speed_median"] if speed_seen else prior.speed_kmh,
        speed_mad=row["speed_mad"] if speed_seen else prior.speed_mad,
        violation_rate=(row["violations_total"] + PRIOR_VEHICLES * prior.violation_rate)
        / (vehicles + PRIOR_VEHICLES),
        class_share={c: row[f"{c}_total"] / vehicles for c in VEHICLE_CLASSES}
        if vehicles
        else prior.class_share,
        learned=True,
    )


def refresh_baselines(
    client: Client,
    database: str,
    profile: CityProfile,
    *,
    min_samples: int,
    effective_from: datetime,
    version: int | None = None,
) -> RefreshSummary:
    """Learn every camera's baselines and write them all as one new version, effective from the
    event time `effective_from` (timezone-aware), moved on to a whole minute: a minute is judged
    by one version, the one its alerts are stamped with."""
    effective_from = _next_whole_minute(effective_from)
    history = learn_from_history(client, database, profile.timezone)
    if version is None:
        version = max(int(time.time()), _current_version(client, database) + 1)
    rows = []
    from_history = 0
    for key, prior in prior_baselines(profile).items():
        learned = history.slots.get(key)
        if learned is not None and learned["samples"] >= min_samples:
            baseline = history_baseline(learned, prior)
            rows.append(baseline_row(key, baseline, samples=int(learned["samples"]),
                                     source=HISTORY_SOURCE, version=version,
                                     effective_from=effective_from))  # fmt: skip
            from_history += 1
        else:
            rows.append(baseline_row(key, prior, samples=0, source=PRIOR_SOURCE, version=version,
                                     effective_from=effective_from))  # fmt: skip
    _insert(client, database, rows)
    summary = RefreshSummary(
        version, effective_from, from_history, len(rows) - from_history, history.days
    )
    log.info("baselines refreshed version=%d effective_from=%s history=%d prior=%d",
             version, effective_from.isoformat(), summary.from_history,
             summary.from_priors)  # fmt: skip
    return summary


def _next_whole_minute(at: datetime) -> datetime:
    whole = at.replace(second=0, microsecond=0)
    return whole if whole == at else whole + timedelta(minutes=1)


def ensure_baselines(
    client: Client, database: str, profile: CityProfile, store: Executor
) -> Baselines | None:
    """Put the priors into an empty baselines table, effective since always; return them, or
    None when the table already had rows.

    A worker calls this in a thread of its own while it folds its first events (issue 20, P7):
    the priors are computed in the caller's thread, and the store is asked in `store`'s (its
    one thread), between the worker's own calls."""
    count = store.submit(client.query, f"SELECT count() FROM {database}.{BASELINES_TABLE}")
    if count.result().result_rows[0][0]:
        return None
    priors = prior_baselines(profile)
    columns = prior_columns(priors, PRIOR_VERSION)
    store.submit(
        client.insert,
        f"{database}.{BASELINES_TABLE}",
        columns,
        column_names=list(COLUMNS),
        column_oriented=True,
    ).result()
    log.info("baselines bootstrapped from priors rows=%d", len(priors))
    return Baselines(priors, PRIOR_VERSION)


def camera_baselines(client: Client, database: str, camera_id: str) -> list[dict[str, Any]]:
    """A camera's rows of the latest version, by kind of day and slot (empty for a camera
    without baselines)."""
    result = client.query(
        f"SELECT {', '.join(COLUMNS)} FROM {database}.{BASELINES_TABLE} FINAL "
        "WHERE camera_id = {camera:String} AND version = "
        f"(SELECT max(version) FROM {database}.{BASELINES_TABLE}) ORDER BY slot",
        parameters={"camera": camera_id},
    )
    rows = list(result.named_results())
    return sorted(rows, key=lambda row: DAY_TYPES.index(row["day_type"]))


def _current_version(client: Client, database: str) -> int:
    result = client.query(f"SELECT max(version) FROM {database}.{BASELINES_TABLE}")
    return int(result.result_rows[0][0] or 0)


def _insert(client: Client, database: str, rows: list[dict[str, object]]) -> None:
    client.insert(
        f"{database}.{BASELINES_TABLE}",
        [[row[column] for column in COLUMNS] for row in rows],
        column_names=list(COLUMNS),
    )
