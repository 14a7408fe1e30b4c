"""Traffic anomaly detection measured on injected incidents (TARGETS.md A1–A7, issues 8, 18).

    python -m benchmarks.anomalies [--cameras 16] [--days 7] [--per-kind 8] [--seed 1]
                                   [--perturb SEED] [--history-weeks N]
                                   [--json results.json] [--partitions 6] [--keep]

A city of `--cameras` cameras (the packaged profile, trimmed) and `--days` days of their traffic
from a Monday without public holidays (benchmarks/anomaly_plan.py) go into two fresh
`camera.events` topics: the injected one, with `--per-kind` incidents of every kind, and the
control, the same seed with none. Each is read by the real `vtops worker` (its own app id and
embedded store, migrated and given its baselines) until its group has committed everything,
then stopped with SIGTERM; the alerts are read from the `traffic.alerts` topic (every write)
and from `traffic_alerts FINAL`. The injected topic is read a second time with another app id,
another store and another checkpoint interval: A5 asks for identical alert streams.

`--perturb SEED` generates the traffic of a city unlike the priors (per-camera volume, road
kind, and its own week: a Sunday morning market, a Friday evening exodus). With
`--history-weeks N` the scored days follow N weeks of that city's traffic, read first by a
worker on a fresh store with the priors (its first day is the cold start, A7); `vtops
baselines refresh` on that store then learns a version effective from the scored days, and
every scored run starts from those versions (A6); else every run starts from the priors.
Scores (benchmarks/anomaly_score.py) are printed per kind beside the targets, then the misses
and the false alerts with their evidence; `--json` writes it all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from benchmarks.anomaly_plan import (
    DAY_MS,
    DURATION_MIN,
    SIZE,
    epoch_ms,
    fill,
    first_monday,
    market_week,
    perturbed_profile,
    plan_incidents,
    trimmed_profile,
)
from benchmarks.anomaly_score import (
    FALSE_ALERTS_TARGET,
    FLAP_TARGET,
    LATE_MS,
    TARGETS,
    WRITE_FIELDS,
    Detection,
    KindScore,
    Replays,
    Write,
    compare_replays,
    detections,
    flapping,
    openings,
    score_kinds,
    unanswered,
    write_of,
)
from benchmarks.topic import BenchTopic, add_topic_options, clean_up, end_offsets
from benchmarks.worker import VTOPS, WorkerRun, run_worker
from city import topics
from city.profile import CityProfile, load_city_profile
from simulator.incidents import Incident
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.settings import StorageSettings
from streams.traffic.anomaly.alerts import ALERTS_TABLE
from streams.traffic.anomaly.baselines import BASELINES_TABLE, COLUMNS
from vtops.baselines import ensure_baselines

# (run, checkpoint interval in s): the replay differs from the first injected run only in its
# app id, store and checkpoint interval, so its checkpoints cut the input elsewhere.
RUNS = (("injected", 2.0), ("control", 2.0), ("replay", 0.3))
SHOWN = 40  # alerts listed with their evidence, per list
DETECTOR = Path(__file__).resolve().parents[1] / "streams" / "traffic" / "anomaly"


@dataclass(frozen=True)
class RunResult:
    name: str
    checkpoint_interval_s: float
    worker: WorkerRun
    topic_rows: list[dict[str, Any]]  # every write on traffic.alerts, in partition order
    final_rows: list[dict[str, Any]]  # traffic_alerts FINAL
    wall_s: float
    detector: str  # digest of the detector's source the worker started with


def prepare_store(
    data_dir: Path, profile: CityProfile, baselines: Sequence[Sequence[Any]] = ()
) -> int:
    """`vtops migrate`, then the baselines the worker starts from: `baselines` (rows of every
    column of the baselines table, every version) or else the simulator's priors (version
    1). Returns the baseline rows written."""
    storage = StorageSettings(data_dir=data_dir, clickhouse_url=None)
    client = connect(storage)
    try:
        migrate(client, storage.clickhouse_database, timezone=profile.timezone)
        if not baselines:
            with ThreadPoolExecutor(max_workers=1) as store:
                written = ensure_baselines(client, storage.clickhouse_database, profile, store)
            return 0 if written is None else len(written.slots)
        table = f"{storage.clickhouse_database}.{BASELINES_TABLE}"
        client.insert(table, list(baselines), column_names=list(COLUMNS))
        return len(baselines)
    finally:
        client.close()


def read_baselines(data_dir: Path) -> list[Sequence[Any]]:
    """Every version of the baselines in the store at `data_dir`, as rows of `COLUMNS`."""
    storage = StorageSettings(data_dir=data_dir, clickhouse_url=None)
    client = connect(storage)
    try:
        table = f"{storage.clickhouse_database}.{BASELINES_TABLE}"
        return list(client.query(f"SELECT {', '.join(COLUMNS)} FROM {table} FINAL").result_rows)
    finally:
        client.close()


def read_final(data_dir: Path) -> list[dict[str, Any]]:
    storage = StorageSettings(data_dir=data_dir, clickhouse_url=None)
    client = connect(storage)
    try:
        result = client.query(
            f"SELECT {', '.join(WRITE_FIELDS)} "
            f"FROM {storage.clickhouse_database}.{ALERTS_TABLE} FINAL ORDER BY alert_id"
        )
        return list(result.named_results())
    finally:
        client.close()


def alert_offsets(topic: BenchTopic) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=topic.bootstrap)
    try:
        name = f"{topic.prefix}{topics.TRAFFIC_ALERTS}"
        tps = [TopicPartition(name, p) for p in range(topic.partitions)]
        return {tp.partition: int(offset) for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def read_alerts(topic: BenchTopic, since: Mapping[int, int]) -> list[dict[str, Any]]:
    """Every write on `<prefix>traffic.alerts` after the offsets `since` (the run's own)."""
    name = f"{topic.prefix}{topics.TRAFFIC_ALERTS}"
    ends = alert_offsets(topic)
    consumer = KafkaConsumer(bootstrap_servers=topic.bootstrap, enable_auto_commit=False)
    rows: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(name, p) for p in range(topic.partitions) if ends[p] > since[p]]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, since[tp.partition])
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < ends[tp.partition] for tp in tps):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: not read to its end within 120 s")
            for batch in consumer.poll(timeout_ms=500).values():
                rows.extend(orjson.loads(m.value) for m in batch if m.offset < ends[m.partition])
    finally:
        consumer.close()
    return rows


def run(
    name: str,
    topic: BenchTopic,
    interval_s: float,
    data_dir: Path,
    profile_path: Path,
    events: int,
) -> RunResult:
    """`vtops worker` on `topic` with the store already in `data_dir`, to the topic's end."""
    started = time.monotonic()
    # The tree may change under a long run (the detector is being tuned): say if it did.
    detector = hashlib.sha1(
        b"".join(path.read_bytes() for path in sorted(DETECTOR.glob("*.py")))
    ).hexdigest()[:12]
    since = alert_offsets(topic)
    print(f"  {name}: worker (checkpoint every {interval_s} s) …", file=sys.stderr, flush=True)
    worker = run_worker(
        topic,
        topic.group(name, 0),
        data_dir,
        end_offsets(topic),
        timeout_s=300 + events / 3_000,
        VTOPS_CITY_PROFILE=str(profile_path),
        VTOPS_CHECKPOINT_INTERVAL_S=str(interval_s),
        VTOPS_METRICS_PORT="0",  # another worker on this machine may hold the default port
    )
    if worker.exit_code != 0:
        print(f"  {name}: worker exited with {worker.exit_code} on SIGTERM", file=sys.stderr)
    return RunResult(
        name,
        interval_s,
        worker,
        read_alerts(topic, since),
        read_final(data_dir),
        time.monotonic() - started,
        detector,
    )


def refresh(data_dir: Path, profile_path: Path, effective_ms: int, profile: CityProfile) -> Any:
    """`vtops baselines refresh` on the history run's store, effective from `effective_ms`:
    the report it prints (--output json)."""
    effective = datetime.fromtimestamp(effective_ms / 1000, profile.tz).isoformat()
    env = {key: value for key, value in os.environ.items() if key != "VTOPS_CLICKHOUSE_URL"}
    env.update(VTOPS_DATA_DIR=str(data_dir), VTOPS_CITY_PROFILE=str(profile_path))
    done = subprocess.run(
        [VTOPS, "baselines", "refresh", "--effective-from", effective, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"vtops baselines refresh failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


# -- the report ---------------------------------------------------------------------------


def _local(ms: int, profile: CityProfile) -> str:
    return datetime.fromtimestamp(ms / 1000, profile.tz).strftime("%a %d %H:%M:%S")


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(part: int, whole: int) -> str:
    return "-" if not whole else f"{100 * part / whole:.0f}%"


def _met(value: bool | None) -> str:
    return "-" if value is None else ("met" if value else "MISSED")


def kind_table(scores: Sequence[KindScore]) -> list[str]:
    header = ("id", "kind", "incid.", "detected", "rate", "median min", "P90 min",
              "in target", "target", "", "collateral", "spurious", "control")  # fmt: skip
    rows = [header]
    for s in scores:
        target = TARGETS.get(s.kind)
        rows.append((
            target.target_id if target else "-", s.kind, str(s.incidents),
            str(s.detected), _share(s.detected, s.incidents), _minutes(s.median_min),
            _minutes(s.p90_min), "-" if s.within is None else _share(s.within, s.incidents),
            target.text if target else "(no target)", _met(s.met), str(s.collateral),
            str(s.spurious), str(s.control),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) if i in (0, 1, 8, 9) else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]  # fmt: skip


def evidence_line(write: Write, profile: CityProfile, note: str = "") -> str:
    return (
        f"  {_local(write.at_ms, profile)}  {write.kind:<15} {write.camera_id:<11} "
        f"observed {write.observed:9.2f}  expected {write.expected:9.2f}  "
        f"ratio {write.ratio:6.2f}  score {write.score:8.2f}  {write.severity}"
        f"{'  reopen ' + str(write.reopens) if write.reopens else ''}{note}"
    )


def miss_line(found: Detection, near: Sequence[Write], profile: CityProfile) -> str:
    incident = found.incident
    others = ", ".join(f"{w.kind} at +{(w.at_ms - incident.start_ms) / 60_000:.1f} min"
                       for w in near) or "no alert on the camera"  # fmt: skip
    return (
        f"  {incident.kind:<15} {incident.camera_id:<11} {_local(incident.start_ms, profile)} "
        f"for {(incident.end_ms - incident.start_ms) // 60_000} min, size {incident.size}: "
        f"{others}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anomalies")
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--perturb",
        type=int,
        metavar="SEED",
        help="generate the traffic of a city unlike the priors (anomaly_plan.perturbed_profile) "
        "with its own week (anomaly_plan.market_week)",
    )
    parser.add_argument(
        "--history-weeks",
        type=int,
        default=0,
        metavar="N",
        help="N weeks of the city's traffic before the scored days, read by a worker on a fresh "
        "store, whose `vtops baselines refresh` (effective from the scored days) the scored "
        "runs start from; 0: every run starts from the priors",
    )
    add_topic_options(parser)
    args = parser.parse_args(argv)
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="bench-anomalies-"))
    profile_path = trimmed_profile(args.cameras, args.partitions, scratch)
    profile = load_city_profile(profile_path)
    first = first_monday(args.days + 7 * args.history_weeks)
    history_ms = epoch_ms(first, profile)
    start_ms = history_ms + args.history_weeks * 7 * DAY_MS
    end_ms = start_ms + args.days * DAY_MS
    incidents = plan_incidents(profile, start_ms, args.days, args.per_kind, args.seed)
    traffic_profile = profile if args.perturb is None else perturbed_profile(profile, args.perturb)
    weekly = None if args.perturb is None else market_week(profile, args.perturb)
    injected = BenchTopic.fresh(args.bootstrap, args.partitions)
    control = BenchTopic.fresh(args.bootstrap, args.partitions)
    history = BenchTopic.fresh(args.bootstrap, args.partitions) if args.history_weeks else None
    results: dict[str, RunResult] = {}
    fills = {}
    refreshed = None
    sources = [("injected", injected, incidents, start_ms), ("control", control, [], start_ms)]
    if history is not None:
        sources.insert(0, ("history", history, [], history_ms))
    try:
        for label, topic, planted, since in sources:
            print(f"filling {label} ({topic.name}) …", file=sys.stderr, flush=True)
            until = start_ms if label == "history" else end_ms
            fills[label] = fill(topic, traffic_profile, since, until, args.seed, planted, weekly)
            print(f"  {fills[label].events:,} events in {fills[label].seconds:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        learned = scratch / "history"
        if history is not None:
            # A fresh deployment reads the city's first weeks, then learns from them.
            learned.mkdir()
            prepare_store(learned, profile)
            results["history"] = run(
                "history", history, 2.0, learned, profile_path, fills["history"].events
            )
            print("  vtops baselines refresh …", file=sys.stderr, flush=True)
            refreshed = refresh(learned, profile_path, start_ms, profile)
        # The scored runs start from what the history run learned (all its versions: the
        # priors before the scored days, the refresh from them on), on stores of their own.
        baselines = read_baselines(learned) if history is not None else []
        for name, interval_s in RUNS:
            topic = control if name == "control" else injected
            data_dir = scratch / name
            data_dir.mkdir()
            prepare_store(data_dir, profile, baselines)
            events = fills["control" if name == "control" else "injected"].events
            results[name] = run(name, topic, interval_s, data_dir, profile_path, events)
    finally:
        used = [t for t in (history, injected, control) if t is not None]
        if not args.keep:
            for topic in used:
                clean_up(topic, [topic.group(name, 0) for name in (*dict(RUNS), "history")])
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept: {scratch}, topics " + ", ".join(f"{t.prefix}*" for t in used),
                  file=sys.stderr)  # fmt: skip
    wall_s = time.monotonic() - began
    monday = first + timedelta(weeks=args.history_weeks)  # of the scored days
    report(args, profile, monday.isoformat(), incidents, fills, results, refreshed, wall_s)


def report(
    args: argparse.Namespace,
    profile: CityProfile,
    monday: str,
    incidents: list[Incident],
    fills: Mapping[str, Any],
    results: Mapping[str, RunResult],
    refreshed: Mapping[str, Any] | None,
    wall_s: float,
) -> None:
    injected_writes = [write_of(row) for row in results["injected"].topic_rows]
    control_writes = [write_of(row) for row in results["control"].topic_rows]
    opened = openings(injected_writes)
    control_opened = openings(control_writes)
    found = detections(incidents, opened)
    extra = unanswered(opened, incidents)
    scores = score_kinds(found, extra, control_opened)
    flaps = flapping(injected_writes, control_writes)
    replays: Replays = compare_replays(
        results["injected"].topic_rows, results["replay"].topic_rows,
        results["injected"].final_rows, results["replay"].final_rows,
    )  # fmt: skip
    camera_days = args.cameras * args.days
    false_rate = len(control_opened) / camera_days
    kinds = ", ".join(sorted({c.kind for c in profile.cameras}))
    per_camera_day = fills["control"].events / camera_days

    print(
        f"vtops anomalies · {args.cameras} cameras ({kinds}) × {args.days} days from Monday "
        f"{monday} · {args.per_kind} incidents per kind · seed {args.seed} · "
        f"{args.partitions} partitions · {os.cpu_count()} CPUs · "
        f"{'priors' if args.perturb is None else f'perturbed city (seed {args.perturb})'} · "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}"
    )
    if refreshed is not None:
        print(
            f"baselines: {args.history_weeks} weeks of history before the scored days, read by "
            f"a worker on a fresh store, then `vtops baselines refresh` version "
            f"{refreshed['version']} effective from {refreshed['effective_from']}: "
            f"{refreshed['slots_from_history']:,} slots from history, "
            f"{refreshed['slots_from_priors']:,} from priors; the scored runs start from it"
        )
    else:
        print("baselines: the simulator's priors (every run is a fresh deployment)")
    print(
        "incidents: " + ", ".join(
            f"{kind} {minutes} min" + (f" ×{SIZE[kind]}" if SIZE[kind] != 1.0 else "")
            for kind, minutes in DURATION_MIN.items()
        ) + "; offline at any hour, the others 07:00–20:00"
    )  # fmt: skip
    print(
        f"events: injected {fills['injected'].events:,} ({fills['injected'].seconds:.0f} s to "
        f"generate and send), control {fills['control'].events:,} "
        f"({fills['control'].seconds:.0f} s); {per_camera_day:,.0f} per camera-day"
    )
    for name, result in results.items():
        w = result.worker
        print(
            f"worker {name:<8} checkpoint {result.checkpoint_interval_s} s: "
            f"{w.events_counted:,} events, start → committed {w.caught_up_s:.0f} s, "
            f"{w.events_counted / w.caught_up_s:,.0f} events/s incl. startup, steady "
            f"{w.steady_events_per_s or 0:,.0f}/s, peak RSS {w.peak_rss_mb:,.0f} MB; "
            f"{len(result.topic_rows):,} alert writes, {len(result.final_rows):,} alerts; "
            f"streams/traffic/anomaly/ {result.detector}"
        )
    print()
    print(
        f"detected: an alert of the incident's kind on its camera opening within [start, "
        f"end + {LATE_MS // 60_000} min]; times are event time from the incident's start"
    )
    print("collateral/spurious: injected-run openings answering no incident, during another"
          " kind's incident on the camera / not; control: openings on the control run")  # fmt: skip
    for line in kind_table(scores):
        print(line)
    print()
    print(f"A4 false alerts per camera-day (control, all kinds, {len(control_opened)} openings "
          f"over {camera_days} camera-days): {false_rate:.3f}  target ≤ {FALSE_ALERTS_TARGET}  "
          f"{_met(false_rate <= FALSE_ALERTS_TARGET)}")  # fmt: skip
    # Cold start: the first day of a fresh store, the history run's if there is one (the
    # city's own traffic, nothing injected), else the control run's.
    fresh = "history" if "history" in results else "control"
    fresh_opened = openings([write_of(row) for row in results[fresh].topic_rows])
    fresh_monday = date.fromisoformat(monday) - timedelta(weeks=args.history_weeks)
    first_day_ends = epoch_ms(fresh_monday, profile) + DAY_MS
    first_day = [o for o in fresh_opened if o.at_ms < first_day_ends]
    first_rate = len(first_day) / args.cameras
    print(f"A7 cold start: false alerts per camera-day on the first day of the fresh store "
          f"({fresh} run, {len(first_day)} openings over {args.cameras} camera-days): "
          f"{first_rate:.3f}  target ≤ {FALSE_ALERTS_TARGET}  "
          f"{_met(first_rate <= FALSE_ALERTS_TARGET)}")  # fmt: skip
    if fresh == "history":
        history_days = args.cameras * 7 * args.history_weeks
        print(f"   over all {args.history_weeks} weeks of history, learning on priors and its "
              f"own level: {len(fresh_opened)} openings over {history_days} camera-days = "
              f"{len(fresh_opened) / history_days:.3f}")  # fmt: skip
    rate = flaps.rate
    print(f"A4 flapping (reopened or flapping, injected + control): {flaps.flapped} of "
          f"{flaps.episodes} episodes = {_share(flaps.flapped, flaps.episodes)}  target < "
          f"{FLAP_TARGET:.0%}  {_met(rate is not None and rate < FLAP_TARGET)}")  # fmt: skip
    print(
        f"A5 replay (checkpoint {results['injected'].checkpoint_interval_s} s vs "
        f"{results['replay'].checkpoint_interval_s} s): topic writes {replays.writes[0]} vs "
        f"{replays.writes[1]} ({replays.distinct[0]} vs {replays.distinct[1]} distinct, "
        f"{replays.only_first}/{replays.only_second} in one only); traffic_alerts FINAL "
        f"{replays.final_rows[0]} vs {replays.final_rows[1]} rows, {replays.final_differ} "
        f"differ: identical {'yes' if replays.identical else 'NO'}  "
        f"{_met(replays.identical)}"
    )
    print(f"wall time {wall_s:.0f} s")
    detectors = {result.detector for result in results.values()}
    if len(detectors) > 1:
        print("WARNING: streams/traffic/anomaly/ changed between the worker runs: "
              + ", ".join(f"{name} {r.detector}" for name, r in results.items()))  # fmt: skip
    missed = [d for d in found if d.minutes is None]
    print(f"\nmissed incidents ({len(missed)}), with the alerts opened on their camera then:")
    for detection in missed:
        incident = detection.incident
        near = [o for o in opened if o.camera_id == incident.camera_id
                and incident.start_ms <= o.at_ms <= incident.end_ms + LATE_MS]  # fmt: skip
        print(miss_line(detection, near, profile))
    print(f"\ncontrol-run openings ({len(control_opened)}; the first {SHOWN}):")
    for write in control_opened[:SHOWN]:
        print(evidence_line(write, profile))
    spurious = [w for w, why in extra if why == "spurious"]
    print(f"\ninjected-run openings answering no incident ({len(extra)}; the first {SHOWN}):")
    for write, why in extra[:SHOWN]:
        print(evidence_line(write, profile, f"  [{why}]"))
    if args.json:
        document = {
            "cameras": args.cameras, "days": args.days, "per_kind": args.per_kind,
            "seed": args.seed, "partitions": args.partitions, "monday": monday,
            "perturb": args.perturb, "history_weeks": args.history_weeks, "refresh": refreshed,
            "cold_start_false_alerts_per_camera_day": first_rate,
            "camera_ids": [c.camera_id for c in profile.cameras],
            "events": {k: v.events for k, v in fills.items()},
            "fill_s": {k: v.seconds for k, v in fills.items()},
            "events_per_camera_day": per_camera_day,
            "workers": {k: {**asdict(r.worker), "checkpoint_interval_s": r.checkpoint_interval_s,
                            "alert_writes": len(r.topic_rows), "alerts": len(r.final_rows),
                            "wall_s": r.wall_s, "detector": r.detector}
                        for k, r in results.items()},
            "kinds": [asdict(s) for s in scores],
            "false_alerts_per_camera_day": false_rate,
            "flapping": {**asdict(flaps), "rate": flaps.rate},
            "replay": {**asdict(replays), "identical": replays.identical},
            "incidents": [{**i.truth(profile.tz), "detected_after_min": d.minutes}
                          for d in found for i in [d.incident]],
            "control_openings": [asdict(w) for w in control_opened],
            "cold_start_openings": [asdict(w) for w in first_day],
            "unanswered_openings": [{**asdict(w), "why": why} for w, why in extra],
            "spurious": len(spurious),
            "wall_s": wall_s,
        }  # fmt: skip
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
