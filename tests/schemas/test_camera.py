"""camera.events validation: the contract's rules, and reasons that name the field."""

from __future__ import annotations

import orjson
import pytest

from schemas.camera import CAMERA_EVENT, Passage, StatusReport, Violation
from schemas.decoding import MAX_EVENT_BYTES, decode
from schemas.exceptions import InvalidEvent
from schemas.fast import decode_camera_event

PASSAGE = {
    "event_id": "e1",
    "camera_id": "VT-CAM-001",
    "ts": "2024-09-14T07:31:05.120+07:00",
    "kind": "passage",
    "vehicle_class": "motorbike",
}


def _decode(event: object) -> object:
    return decode(CAMERA_EVENT, orjson.dumps(event), tagged=True)


def test_both_time_encodings_give_the_same_instant() -> None:
    as_text = _decode(PASSAGE)
    as_millis = _decode({**PASSAGE, "ts": 1726273865120})
    as_utc = _decode({**PASSAGE, "ts": "2024-09-14T00:31:05.120Z"})
    assert isinstance(as_text, Passage)
    assert as_text.ts == 1726273865120
    assert as_millis == as_text == as_utc


def test_kinds_are_told_apart_and_unknown_fields_ignored() -> None:
    violation = _decode(
        {
            **PASSAGE,
            "kind": "violation",
            "violation_type": "no_helmet",
            "plate": "72-B1 123.45",
            "colour": "red",
        }
    )
    status = _decode(
        {
            "event_id": "s",
            "camera_id": "VT-CAM-002",
            "ts": 1726273865120,
            "kind": "status",
            "status": "degraded",
        }
    )
    assert isinstance(violation, Violation) and violation.violation_type == "no_helmet"
    assert isinstance(status, StatusReport) and status.status == "degraded"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ts": True}, "ts"),
        ({"ts": "2024-09-14T07:31:05"}, "ts"),
        ({"ts": "2024-09-14"}, "ts"),
        ({"ts": 17262738651.5}, "ts"),
        ({"ts": 12}, "ts"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 65}, "event_id"),
        ({"event_id": 7}, "event_id"),
        ({"kind": "boat"}, "kind"),
        ({"kind": None}, "kind"),
        ({"vehicle_class": "Car"}, "vehicle_class"),
        ({"lane": 0}, "lane"),
        ({"lane": 17}, "lane"),
        ({"lane": "3"}, "lane"),
        ({"speed_kmh": 251}, "speed_kmh"),
        ({"speed_kmh": -1}, "speed_kmh"),
        ({"speed_kmh": "fast"}, "speed_kmh"),
        ({"direction": "north"}, "direction"),
        ({"plate": "72A-123.45-EXTRA-LONG"}, "plate"),
        ({"camera_id": None}, "camera_id"),
    ],
)
def test_invalid_field_is_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        _decode({**PASSAGE, **change})
    assert caught.value.reason.startswith(f"{field}:"), caught.value.reason


@pytest.mark.parametrize("missing", ["event_id", "camera_id", "ts", "vehicle_class"])
def test_missing_required_field_is_named(missing: str) -> None:
    event = {k: v for k, v in PASSAGE.items() if k != missing}
    with pytest.raises(InvalidEvent, match=f"^{missing}: Field required"):
        _decode(event)


def test_violation_needs_its_type_and_status_its_status() -> None:
    with pytest.raises(InvalidEvent, match=r"^violation_type:"):
        _decode({**PASSAGE, "kind": "violation"})
    with pytest.raises(InvalidEvent, match=r"^status:"):
        _decode({**PASSAGE, "kind": "status"})


@pytest.mark.parametrize(
    "ts",
    [
        "2024-W37-6T07:31:05+07:00",  # ISO 8601 week date
        "20240914T073105+0700",  # ISO 8601 basic format
        "2024-09-14T07:31:05+0700",  # offset without its colon
        "2024-09-14T07:31:05+07",  # offset without minutes
        "2024-09-14T07:31+07:00",  # no seconds
        "2024-09-14T07:31:05,120+07:00",  # decimal comma
        "2024-09-14T07:31:05.+07:00",  # a point without a fraction
        "2024-09-14T07:31:05.１２+07:00",  # fraction in non-ASCII digits
        "2024-09-14T07:31:05.120+07:00\n",
    ],
)
def test_iso_8601_times_outside_rfc_3339_are_invalid_on_both_paths(ts: str) -> None:
    """The contract asks for RFC 3339; Python's fromisoformat takes most of ISO 8601."""
    raw = orjson.dumps({**PASSAGE, "ts": ts})
    for decoder in (
        lambda: decode(CAMERA_EVENT, raw, tagged=True),
        lambda: decode_camera_event(raw),
    ):
        with pytest.raises(InvalidEvent, match=r"^ts: .*RFC 3339"):
            decoder()


@pytest.mark.parametrize(
    "ts",
    [
        "2024-09-14T00:31:05.120Z",
        "2024-09-14t00:31:05.120z",  # RFC 3339 allows both cases
        "2024-09-14 07:31:05.120+07:00",  # and a space for the T (section 5.6, note)
        "2024-09-14T07:31:05.120000001+07:00",
    ],
)
def test_rfc_3339_times_are_valid_on_both_paths(ts: str) -> None:
    raw = orjson.dumps({**PASSAGE, "ts": ts})
    slow, quick = decode(CAMERA_EVENT, raw, tagged=True), decode_camera_event(raw)
    assert isinstance(slow, Passage)
    assert slow.ts == quick.ts == 1726273865120


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "payload: invalid JSON"),
        (b"\xff\xfe\x00", "payload: invalid JSON"),
        (b"[1, 2]", "payload:"),
        (b"", "payload:"),
        (None, "payload: empty message"),
        (b'{"a": "' + b"x" * MAX_EVENT_BYTES + b'"}', "payload: "),
    ],
)
def test_unreadable_payloads(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(CAMERA_EVENT, raw, tagged=True)
    assert caught.value.reason.startswith(reason)


def test_a_reason_names_the_field_and_the_rule_but_never_the_rejected_value() -> None:
    """Reasons reach `dlq_events.error`, which Grafana's user may read; plates must not."""
    plate = "72A-123.45 (TRAILER 9)"
    raw = orjson.dumps(
        {
            "event_id": "e1",
            "camera_id": "VT-CAM-001",
            "ts": 1_726_272_000_000,
            "kind": "violation",
            "vehicle_class": "car",
            "violation_type": "red_light",
            "plate": plate,
        }
    )
    with pytest.raises(InvalidEvent) as refused:
        decode_camera_event(raw)
    assert refused.value.reason == "plate: String should have at most 16 characters"
    assert "72A" not in refused.value.reason
