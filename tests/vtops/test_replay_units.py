"""The replay tools' pure parts: times, stream names, an archive's send order and schema."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from city.profile import load_city_profile
from city.settings import KafkaSettings
from vtops.replay.archive_import import plan_import, send_order
from vtops.replay.exceptions import ReplayError
from vtops.replay.selection import chosen_streams
from vtops.replay.times import parse_instant
from vtops.settings import Settings


def test_an_instant_without_an_offset_is_city_time_and_a_bad_one_names_its_option() -> None:
    city = load_city_profile().tz
    assert parse_instant("--from", "2024-09-14T07:00:00", city) == datetime(
        2024, 9, 14, 0, tzinfo=UTC
    )
    assert parse_instant("--to", "2024-09-14T07:00:00Z", city) == datetime(
        2024, 9, 14, 7, tzinfo=UTC
    )
    # City time is the profile's: 07:00 in Lisbon's summer is 06:00 UTC.
    lisbon = ZoneInfo("Europe/Lisbon")
    assert parse_instant("--from", "2024-09-14T07:00:00", lisbon) == datetime(
        2024, 9, 14, 6, tzinfo=UTC
    )
    with pytest.raises(ReplayError, match="--since: not an ISO 8601 time"):
        parse_instant("--since", "yesterday", city)


def test_streams_are_named_by_stream_or_input_topic_and_an_unknown_one_is_refused() -> None:
    settings = Settings()
    assert [s.stream.name for s in chosen_streams(settings, "camera,portal")] == [
        "traffic",
        "portal",
    ]
    assert [s.by_group is not None for s in chosen_streams(settings, None)] == [
        False,
        True,
        True,
    ]
    with pytest.raises(ReplayError, match=r"--streams: unknown stream \['parking'\]"):
        chosen_streams(settings, "traffic,parking")


def test_the_send_order_follows_timestamps_but_never_reorders_a_partition() -> None:
    # Two partitions' (timestamp, offset) in offset order; a's offset 1 is older than its
    # offset 0: it must still go after it.
    a = [(100, "a0"), (50, "a1"), (300, "a2")]
    b = [(60, "b0"), (200, "b1")]
    assert list(send_order([a, b])) == [
        (60, "b0"),
        (100, "a0"),
        (100, "a1"),
        (200, "b1"),
        (300, "a2"),
    ]


def test_importing_a_file_that_is_not_an_archive_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"topic": ["camera.events"], "value": [b"x"]}), path)
    with pytest.raises(ReplayError, match="not a vtops archive: no column 'partition'"):
        plan_import(KafkaSettings(), path, any_topic=False, restamp=False)
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(ReplayError, match="not a readable Parquet file"):
        plan_import(KafkaSettings(), tmp_path / "junk.parquet", any_topic=False, restamp=False)
