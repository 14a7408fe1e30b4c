"""portal.transactions validation: the contract's rules, and reasons that name the field."""

from __future__ import annotations

import orjson
import pytest

from schemas.decoding import decode
from schemas.exceptions import InvalidEvent
from schemas.portal import PORTAL_TRANSACTION, PortalTransaction

TS = 1_726_272_000_000  # 2024-09-14T07:00:00+07:00
SUBMITTED = {
    "event_id": "d1-s",
    "dossier_id": "D-1",
    "procedure_code": "1.001193",
    "agency": "ubnd-phuong-1",
    "ts": "2024-09-14T07:00:00+07:00",
    "status": "submitted",
    "channel": "online",
}
RESOLVED = {
    **{k: v for k, v in SUBMITTED.items() if k != "channel"},
    "event_id": "d1-r",
    "status": "resolved",
}


def _decode(event: object) -> PortalTransaction:
    return decode(PORTAL_TRANSACTION, orjson.dumps(event))


def test_optional_fields_default_to_none_and_unknown_fields_are_ignored() -> None:
    event = _decode({**SUBMITTED, "applicant": "ignored"})
    assert event.ts == TS and event.channel == "online"
    assert (event.service_level, event.auth, event.due_at, event.paid_online, event.signed) == (
        None,
        None,
        None,
        None,
        None,
    )
    full = _decode(
        {
            **SUBMITTED,
            "service_level": "full",
            "auth": "vneid_l2",
            "due_at": "2024-09-16T10:00:00Z",
            "paid_online": True,
        }
    )
    assert full.due_at == TS + 2 * 86_400_000 + 10 * 3_600_000
    assert full.auth == "vneid_l2" and full.paid_online is True


@pytest.mark.parametrize(
    "status", ["accepted", "supplement_requested", "resolved", "rejected", "withdrawn"]
)
def test_channel_is_needed_only_on_submission(status: str) -> None:
    assert _decode({**RESOLVED, "status": status}).channel is None


def test_a_submission_without_channel_names_the_channel() -> None:
    with pytest.raises(InvalidEvent) as caught:
        _decode({k: v for k, v in SUBMITTED.items() if k != "channel"})
    assert caught.value.reason == "channel: Field required when status is 'submitted'"
    with pytest.raises(InvalidEvent, match=r"^channel: Field required"):
        _decode({**SUBMITTED, "channel": None})


@pytest.mark.parametrize(
    ("base", "change", "field"),
    [
        (SUBMITTED, {"event_id": ""}, "event_id"),
        (SUBMITTED, {"dossier_id": "d" * 65}, "dossier_id"),
        (SUBMITTED, {"dossier_id": 42}, "dossier_id"),
        (SUBMITTED, {"procedure_code": ""}, "procedure_code"),
        (SUBMITTED, {"procedure_code": "1." + "0" * 31}, "procedure_code"),
        (SUBMITTED, {"agency": None}, "agency"),
        (SUBMITTED, {"ts": "2024-09-14T07:00:00"}, "ts"),
        (SUBMITTED, {"ts": "2024-09-14"}, "ts"),
        (SUBMITTED, {"ts": 1.5e12}, "ts"),
        (SUBMITTED, {"status": "Submitted"}, "status"),
        (SUBMITTED, {"status": "lost"}, "status"),
        (SUBMITTED, {"status": None}, "status"),
        (SUBMITTED, {"channel": "fax"}, "channel"),
        (SUBMITTED, {"channel": "ONLINE"}, "channel"),
        (SUBMITTED, {"service_level": "level4"}, "service_level"),
        (SUBMITTED, {"auth": "vneid_l3"}, "auth"),
        (SUBMITTED, {"auth": ""}, "auth"),
        (SUBMITTED, {"due_at": "next week"}, "due_at"),
        (SUBMITTED, {"due_at": "2024-09-20T17:00:00"}, "due_at"),
        (SUBMITTED, {"due_at": False}, "due_at"),
        (SUBMITTED, {"paid_online": "true"}, "paid_online"),
        (SUBMITTED, {"paid_online": 1}, "paid_online"),
        (RESOLVED, {"signed": "yes"}, "signed"),
        (RESOLVED, {"signed": 0}, "signed"),
    ],
)
def test_invalid_field_is_named(
    base: dict[str, object], change: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        _decode({**base, **change})
    assert caught.value.reason.startswith(f"{field}:"), caught.value.reason


@pytest.mark.parametrize(
    "missing", ["event_id", "dossier_id", "procedure_code", "agency", "ts", "status"]
)
def test_missing_required_field_is_named(missing: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        _decode({k: v for k, v in RESOLVED.items() if k != missing})
    assert caught.value.reason == f"{missing}: Field required"
