"""Issue 18: one alert per city-wide event. Each input partition judges its own cameras, so an
outage across the city is found once per partition; the store's `traffic_alerts_merged` (what
the dashboards, the alert rules, the report and the demo read) shows it once. Through Kafka and
a real `vtops worker` reading two partitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from city import topics
from city.profile import load_city_profile
from dashboards.provisioning import open_traffic_alerts_sql
from tests.anomaly_city import T0, traffic
from tests.pipeline import PipelineRun, partition_of

pytestmark = pytest.mark.integration

PARTITIONS = 2
MINUTES = 30
# Five cameras in each partition; four of each go dark, one partition two minutes after the
# other (so their findings start at other minutes), until the end of the run.
CITY = [
    [c.camera_id for c in load_city_profile().cameras if partition_of(c.camera_id, 2) == p][:5]
    for p in range(PARTITIONS)
]
DARK_FROM = {camera: 15 + 2 * p for p, cameras in enumerate(CITY) for camera in cameras[:4]}


def rate(camera: str, index: int) -> float:
    return 0.0 if index >= DARK_FROM.get(camera, MINUTES) else 20.0


@pytest.fixture
def pipeline(broker: str, tmp_path: Path) -> Iterator[PipelineRun]:
    run = PipelineRun(data_dir=tmp_path, partitions=PARTITIONS)
    run.create_topics()
    yield run
    run.kill_leftovers()


def test_an_outage_across_partitions_is_one_alert(pipeline: PipelineRun) -> None:
    cameras = [camera for partition in CITY for camera in partition]
    pipeline.produce_events(topics.CAMERA_EVENTS, "camera_id", traffic(cameras, rate, T0, MINUTES))
    worker = pipeline.start_worker()
    pipeline.wait_until_checkpointed(topics.CAMERA_EVENTS)
    assert pipeline.stop_worker(worker) == 0

    findings = pipeline.rows(
        "SELECT alert_id, status, observed, expected FROM vtops.traffic_alerts FINAL"
        " WHERE kind = 'site_offline'"
    )
    # Each partition found it: two rows of their own, neither overwriting the other.
    assert len({row[0] for row in findings}) == PARTITIONS
    assert all(row[1:] == ("open", 4.0, 5.0) for row in findings)
    merged = pipeline.rows(
        "SELECT kind, camera_id, status, observed, expected, ratio, first_anomalous_at,"
        " alert_id FROM vtops.traffic_alerts_merged"
    )
    assert [row[:6] for row in merged] == [("site_offline", "*", "open", 8.0, 10.0, 0.8)]
    assert merged[0][7] in {row[0] for row in findings}
    # The critical alert rule: one instance, named by the earlier partition's finding.
    rule = pipeline.rows(open_traffic_alerts_sql("critical").replace("{db}", "vtops"))
    assert [(row[0], row[1]) for row in rule] == [(merged[0][7], "site_offline")]
