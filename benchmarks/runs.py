"""One run of the benchmark: the same filled topic read by the worker (P1), by Quix Streams
(P2) and by a bare aiokafka loop (P3), each with a new consumer group; and what of each run is
reported."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from subprocess import run as run_process

import orjson

from benchmarks.report import Measure
from benchmarks.topic import BenchTopic
from benchmarks.worker import WorkerRun, run_worker

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Peer:
    events_per_s: float
    wall_s: float
    first_event_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class Run:
    worker: WorkerRun
    quix: Peer
    bare: Peer


def run_peer(
    kind: str, topic: BenchTopic, events: int, run: int, scratch: Path, timeout_s: float
) -> Peer:
    """`python -m benchmarks.peers KIND …` in its own process; its JSON line, parsed."""
    command = [sys.executable, "-m", "benchmarks.peers", kind, "--bootstrap", topic.bootstrap]
    command += ["--topic", topic.name, "--partitions", str(topic.partitions)]
    command += ["--events", str(events)]
    if kind == "quix":
        command += ["--group", topic.group("quix", run), "--state-dir", str(scratch / f"q{run}")]
        command += ["--output-topic", f"{topic.prefix}quix.flow-1m"]
    done = run_process(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} run {run} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = orjson.loads(lines[-1])
    return Peer(
        result["events_per_s"], result["wall_s"], result["first_event_s"], result["peak_rss_mb"]
    )


def one_run(
    topic: BenchTopic, events: int, ends: dict[int, int], run: int, scratch: Path, timeout_s: float
) -> Run:
    data_dir = scratch / f"worker-{run}"
    data_dir.mkdir()
    worker: WorkerRun | None = None
    peers: dict[str, Peer] = {}
    # The three readers take turns going first, so a drift in the machine's load hits all alike.
    steps = ["worker", "quix", "aiokafka"]
    for step in steps[run % 3 :] + steps[: run % 3]:
        print(f"  run {run + 1}: {step} …", file=sys.stderr, flush=True)
        if step == "worker":
            worker = run_worker(topic, topic.group("worker", run), data_dir, ends, timeout_s)
            if worker.exit_code != 0:
                print(f"  worker exited with {worker.exit_code} on SIGTERM", file=sys.stderr)
        else:
            peers[step] = run_peer(step, topic, events, run, scratch, timeout_s)
    assert worker is not None
    return Run(worker, peers["quix"], peers["aiokafka"])


# (TARGETS id, JSON key, label, target as TARGETS.md puts it, the value of one run)
MEASURES: list[tuple[str, str, str, str, Callable[[Run], float | None]]] = [
    ("P1", "p1_events_per_s", "vtops worker, steady events/s (checkpoint cuts)", "≥ 20,000",
     lambda r: r.worker.steady_events_per_s),
    ("P1", "p1_ready_to_last_cut_events_per_s", "vtops worker, events/s 'Ready' → last cut",
     "", lambda r: r.worker.ready_to_last_cut_events_per_s),
    ("P1", "p1_events_per_s_incl_startup", "vtops worker, events/s incl. startup", "",
     lambda r: r.worker.events_counted / r.worker.caught_up_s),
    ("P1", "p1_caught_up_s", "worker start → all offsets committed, s", "",
     lambda r: r.worker.caught_up_s),
    ("P1", "p1_checkpoints", "worker checkpoints (progress points)", "",
     lambda r: float(r.worker.checkpoints)),
    ("P1", "p1_events_counted", "events counted by the worker", "",
     lambda r: float(r.worker.events_counted)),
    ("P7", "p7_ready_s", "worker start → Faust 'Ready', s", "", lambda r: r.worker.ready_s),
    ("P7", "p7_first_fold_s", "worker start → first event folded, s", "≤ 3",
     lambda r: r.worker.first_fold_s),
    ("P7", "p7_first_checkpoint_s", "worker start → first checkpoint, s", "",
     lambda r: r.worker.first_checkpoint_s),
    ("P5", "p5_worker_peak_rss_mb", "worker peak RSS (VmHWM), MB", "≤ 1,536",
     lambda r: r.worker.peak_rss_mb),
    ("P2", "p2_quix_events_per_s", "Quix Streams, events/s", "", lambda r: r.quix.events_per_s),
    ("P2", "p2_quix_first_event_s", "Quix run() → first event, s", "",
     lambda r: r.quix.first_event_s),
    ("P2", "p2_quix_peak_rss_mb", "Quix peak RSS, MB", "", lambda r: r.quix.peak_rss_mb),
    ("P3", "p3_aiokafka_events_per_s", "bare aiokafka + orjson, events/s", "",
     lambda r: r.bare.events_per_s),
    ("P3", "p3_aiokafka_peak_rss_mb", "bare aiokafka peak RSS, MB", "",
     lambda r: r.bare.peak_rss_mb),
]  # fmt: skip


def measures(runs: list[Run]) -> list[Measure]:
    return [
        Measure(target_id, key, label, target, [value(run) for run in runs])
        for target_id, key, label, target, value in MEASURES
    ]
