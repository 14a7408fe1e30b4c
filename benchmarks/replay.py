"""P6 for the replay tools (issue 9): a city hour of camera events through `vtops archive
export`, `vtops archive import` and `vtops reprocess`, each as its own process.

    python -m benchmarks.replay [--events 1000000] [--partitions 6] [--keep]

`camera.events` is filled once under a fresh prefix (as benchmarks.throughput does). Then, one
process each, timed from process start to exit, with its peak RSS (VmHWM, sampled):

1. export the topic to Parquet (zstd);
2. import the file into a second prefix, unpaced;
3. reprocess the hour from the topic range into an empty store (every window is new);
4. reprocess the imported topics: the hour from the archive file is (2) + (4).

Prints rates (events/s), seconds, peak RSS and the file size, then one JSON line. Never fails on
a target: TARGETS.md's P6 asks ≤ 60 s from a topic range and ≤ 60 s from an archive file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from benchmarks.topic import BenchTopic, add_topic_options, clean_up, create_and_fill
from vtops.kafka.topics import ensure_topics

VTOPS = str(Path(sys.executable).parent / "vtops")


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    events_per_s: float
    peak_rss_mb: float


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measured(name: str, args: list[str], env: dict[str, str], events: int) -> Step:
    """Run `vtops args` to its end; its wall time and the highest VmHWM seen."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [VTOPS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _vm_hwm_mb(process.pid) or 0.0)
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if process.returncode != 0:
        raise RuntimeError(f"vtops {' '.join(args)} exited {process.returncode}:\n{output}")
    return Step(name, seconds, events / seconds, peak)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    add_topic_options(parser)
    options = parser.parse_args(argv)
    topic = BenchTopic.fresh(options.bootstrap, options.partitions)
    copy = BenchTopic(topic.bootstrap, f"{topic.token}copy", topic.partitions)
    scratch = Path(tempfile.mkdtemp(prefix=f"{topic.token}-"))
    archive = scratch / "hour.parquet"
    try:
        filled_at = datetime.now(UTC) - timedelta(seconds=1)
        fill = create_and_fill(topic, options.events, options.seed)
        ensure_topics(copy.settings())  # an import never creates a topic
        until = datetime.now(UTC) + timedelta(seconds=1)

        def env(bench: BenchTopic, data: str) -> dict[str, str]:
            return {
                **os.environ,
                "VTOPS_KAFKA_BOOTSTRAP": bench.bootstrap,
                "VTOPS_TOPIC_PREFIX": bench.prefix,
                "VTOPS_APP_ID": bench.token,
                "VTOPS_PARTITIONS": str(bench.partitions),
                "VTOPS_DATA_DIR": str(scratch / data),
            }

        window = ["--from", "2025-09-15T00:00:00+07:00", "--to", "2025-09-16T00:00:00+07:00"]
        steps = [
            measured(
                "export",
                ["archive", "export", "--from", filled_at.isoformat(), "--to",
                 until.isoformat(), "--clock", "kafka", "--out", str(archive),
                 "--streams", "camera"],
                env(topic, "source"),
                options.events,
            ),
            measured(
                "import (unpaced)",
                ["archive", "import", str(archive), "--yes"],
                env(copy, "copy"),
                options.events,
            ),
            measured(
                "reprocess from the topic range",
                ["reprocess", *window, "--streams", "camera"],
                env(topic, "source"),
                options.events,
            ),
            measured(
                "reprocess the imported archive",
                ["reprocess", *window, "--streams", "camera"],
                env(copy, "copy"),
                options.events,
            ),
        ]  # fmt: skip
        size_mb = archive.stat().st_size / 1e6
    finally:
        if not options.keep:
            clean_up(topic, [])
            clean_up(copy, [])
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{options.events:,} camera events ({fill.city_minutes} city minutes), "
          f"{options.partitions} partitions; archive {size_mb:,.1f} MB")  # fmt: skip
    print(f"{'step':<34} {'seconds':>8} {'events/s':>10} {'peak RSS MB':>12}")
    for step in steps:
        print(f"{step.name:<34} {step.seconds:>8.1f} {step.events_per_s:>10,.0f} "
              f"{step.peak_rss_mb:>12,.0f}")  # fmt: skip
    from_archive = steps[1].seconds + steps[3].seconds
    print(f"P6 from a topic range: {steps[2].seconds:.1f} s (≤ 60); "
          f"from an archive file (import + reprocess): {from_archive:.1f} s (≤ 60)")  # fmt: skip
    print(orjson.dumps({
        "events": options.events, "archive_mb": size_mb,
        "steps": [asdict(s) for s in steps], "p6_topic_s": steps[2].seconds,
        "p6_archive_s": from_archive,
    }).decode())  # fmt: skip


if __name__ == "__main__":
    main()
