"""/ready, /healthz and /metrics of a real worker, checked against what it wrote to ClickHouse."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from city import topics
from tests.factories import MINUTE_MS, T0, passage
from tests.pipeline import PipelineRun, partition_of

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body); 0 while nothing serves yet (the port is claimed at start, so an early
    request may wait for the pages until it times out)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (ConnectionError, TimeoutError, urllib.error.URLError):
        return 0, ""


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(body: str) -> Samples:
    """The exposition format, as Prometheus' own client parses it (it refuses a bad line)."""
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def valid_cameras_per_partition(partitions: int) -> list[str]:
    """One camera of the profile (VT-CAM-001 to 196) for each partition."""
    found: dict[int, str] = {}
    for n in range(1, 197):
        camera = f"VT-CAM-{n:03d}"
        found.setdefault(partition_of(camera, partitions), camera)
    return [found[p] for p in range(partitions)]


def total(samples: Samples, name: str, topic: str) -> float:
    return sum(value for labels, value in samples[name] if labels["topic"] == topic)


def test_ready_after_assignment_and_metrics_match_the_rows(pipeline: PipelineRun) -> None:
    port = free_port()
    pipeline.extra_env.update({"VTOPS_METRICS_PORT": str(port), "VTOPS_METRICS_BIND": "127.0.0.1"})
    cameras = valid_cameras_per_partition(pipeline.partitions)
    worker = pipeline.start_worker()
    (log_path,) = pipeline.data_dir.glob("worker-*.log")
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while True:
        assert worker.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"never ready: {seen[-5:]}"
        code, _ = get(port, "/ready")
        seen.append(code)
        if code == 200:
            break
        if code == 503:
            assert get(port, "/healthz")[0] == 200  # alive while it waits for partitions
        time.sleep(0.05)
    # Ready only once every partition's state is loaded, which the worker logs just before.
    assert "assigned partitions=" in log_path.read_text()
    assert 503 in seen, f"ready before any 503: {seen[:5]}"

    camera = cameras[0]
    events = [passage(f"e{n}", cam, T0 + n * 1000) for n, cam in enumerate(cameras * 5)]
    events += [
        passage("e0", cameras[0], T0),  # duplicate
        passage("close", camera, T0 + 3 * MINUTE_MS + 10_000),  # closes 07:00 (grace 120 s)
        passage("late", camera, T0 + 30_000),  # late for its partition
    ]
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", events)
    pipeline.produce(topics.CAMERA_EVENTS, [(camera, b"{not json"), (cameras[-1], b"[]")])
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    code, body = get(port, "/metrics")
    assert code == 200
    samples = parse(body)
    assert get(port, "/healthz")[0] == 200
    assert pipeline.stop_worker(worker) == 0

    source = pipeline.topic(topics.CAMERA_EVENTS)
    sent = len(events) + 2
    assert total(samples, "vtops_events_in_total", source) == sent
    assert total(samples, "vtops_events_duplicate_total", source) == 1
    assert total(samples, "vtops_events_late_total", source) == 1
    assert total(samples, "vtops_events_invalid_total", source) == 2
    accepted = total(samples, "vtops_events_accepted_total", source)
    assert accepted == len(events) - 2
    assert total(samples, "vtops_consumer_lag", source) == 0
    partitions = {
        labels["partition"]
        for labels, _ in samples["vtops_partition_offset"]
        if labels["topic"] == source
    }
    assert partitions == {str(p) for p in range(pipeline.partitions)}
    (ready,) = samples["vtops_ready"]
    assert ready[1] == 1
    ((_, last_checkpoint),) = samples["vtops_last_checkpoint_timestamp_seconds"]
    assert 0 <= time.time() - last_checkpoint < 30
    ((_, checkpoints),) = samples["vtops_checkpoint_duration_seconds_count"]
    assert checkpoints >= 1
    ((build, _),) = samples["vtops_build_info"]
    assert build["version"]
    assert samples["process_resident_memory_bytes"][0][1] > 0
    assert samples["process_open_fds"][0][1] > 0
    retries = {labels["sink"]: value for labels, value in samples["vtops_sink_retries_total"]}
    assert retries["traffic_flow_1m"] == 0 and retries["dlq_events"] == 0

    # The same numbers in what the worker wrote.
    assert pipeline.rows("SELECT sum(vehicles) FROM vtops.traffic_flow_1m FINAL") == [(accepted,)]
    assert pipeline.rows("SELECT count() FROM vtops.dlq_events FINAL") == [(2,)]
    open_rows = pipeline.rows("SELECT count() FROM vtops.traffic_flow_1m FINAL WHERE final = 0")
    assert open_rows == [(total(samples, "vtops_open_windows", source),)]
    last = pipeline.rows(f"""
        SELECT sum(events), sum(accepted), sum(duplicates), sum(late), sum(invalid) FROM (
            SELECT partition, argMax(events, offset) AS events,
                   argMax(accepted, offset) AS accepted,
                   argMax(duplicates, offset) AS duplicates,
                   argMax(late, offset) AS late, argMax(invalid, offset) AS invalid
            FROM vtops.pipeline_progress FINAL WHERE source_topic = '{source}'
            GROUP BY partition)""")
    assert last == [(sent, accepted, 1, 1, 2)]


def test_a_taken_metrics_port_stops_the_worker_in_one_line(pipeline: PipelineRun) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pipeline.extra_env.update(
            {"VTOPS_METRICS_PORT": str(port), "VTOPS_METRICS_BIND": "127.0.0.1"}
        )
        done = pipeline.vtops("worker", timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: VTOPS_METRICS_PORT: port {port} on 127.0.0.1 is in use (another worker?); "
        "choose a free port, or 0 to serve no metrics"
    ]
