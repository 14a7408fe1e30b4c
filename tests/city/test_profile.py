"""The default city profile keeps the article's numbers; a broken profile is refused clearly."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from city.exceptions import CityProfileError, VtopsError
from city.profile import CityProfile, Point, load_city_profile

CONTRACT_WARDS = (
    "phuong-1", "phuong-2", "phuong-3", "phuong-4", "phuong-5", "phuong-7", "phuong-8",
    "phuong-9", "phuong-10", "phuong-11", "phuong-12", "thang-nhat", "thang-nhi", "thang-tam",
    "rach-dua", "nguyen-an-ninh", "long-son",
)  # fmt: skip
# BRIEF.md: the units formed on 1 July 2025.
UNIT_OF_WARD = {
    **dict.fromkeys(
        ["phuong-1", "phuong-2", "phuong-3", "phuong-4", "phuong-5", "thang-nhi", "thang-tam"],
        "phuong-vung-tau",
    ),
    **dict.fromkeys(["phuong-7", "phuong-8", "phuong-9", "nguyen-an-ninh"], "phuong-tam-thang"),
    **dict.fromkeys(["phuong-10", "thang-nhat", "rach-dua"], "phuong-rach-dua"),
    **dict.fromkeys(["phuong-11", "phuong-12"], "phuong-phuoc-thang"),
    "long-son": "xa-long-son",
}
ARTICLE_CAMERA_KINDS = {
    "high_ptz": 6,
    "low_ptz": 21,
    "security": 130,
    "urban_management": 31,
    "traffic_counting": 8,
}
BEACH_ROADS = {"Thùy Vân", "Hạ Long", "Trần Phú", "Quang Trung"}


@pytest.fixture(scope="module")
def city() -> CityProfile:
    return load_city_profile()


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Independent of Point.distance_km, so the geometry test does not grade itself."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def test_default_profile_is_loaded_once(city: CityProfile) -> None:
    assert load_city_profile() is city
    assert city.timezone == "Asia/Ho_Chi_Minh"
    assert city.tz.key == "Asia/Ho_Chi_Minh"


def test_cameras_are_the_articles_196_of_five_kinds(city: CityProfile) -> None:
    ids = [c.camera_id for c in city.cameras]
    assert ids == [f"VT-CAM-{i:03d}" for i in range(1, 197)]
    assert Counter(c.kind for c in city.cameras) == ARTICLE_CAMERA_KINDS


def test_wards_are_the_contracts_17_and_map_to_the_2025_units(city: CityProfile) -> None:
    assert [w.code for w in city.wards] == list(CONTRACT_WARDS)
    assert city.ward_codes == frozenset(CONTRACT_WARDS)
    assert dict(city.unit_of_ward) == UNIT_OF_WARD
    assert {u.code: u.name for u in city.units_2025} == {
        "phuong-vung-tau": "Phường Vũng Tàu",
        "phuong-tam-thang": "Phường Tam Thắng",
        "phuong-rach-dua": "Phường Rạch Dừa",
        "phuong-phuoc-thang": "Phường Phước Thắng",
        "xa-long-son": "Xã Long Sơn",
    }
    names = {w.code: w.name for w in city.wards}
    assert names["phuong-1"] == "Phường 1"
    assert names["thang-nhat"] == "Phường Thắng Nhất"
    assert names["long-son"] == "Xã Long Sơn"


def test_ward_geography_is_plausible(city: CityProfile) -> None:
    wards = {w.code: w for w in city.wards}
    assert 80 <= wards["long-son"].area_km2 <= 100
    assert all(0.5 <= wards[c].area_km2 <= 3.5 for c in ("phuong-1", "phuong-3", "phuong-4"))
    for w in city.wards:  # all on the Vũng Tàu peninsula or Long Sơn island
        assert 10.30 <= w.center.lat <= 10.50 and 107.03 <= w.center.lon <= 107.20, w.code
    for a, b in combinations(city.wards, 2):
        gap = haversine_km(a.center.lat, a.center.lon, b.center.lat, b.center.lon)
        assert gap > 0.5, (a.code, b.code)


def test_every_camera_lies_inside_its_wards_circle(city: CityProfile) -> None:
    wards = {w.code: w for w in city.wards}
    for c in city.cameras:
        ward = wards[c.ward]
        distance = haversine_km(c.lat, c.lon, ward.center.lat, ward.center.lon)
        assert distance <= ward.radius_km, (c.camera_id, c.ward, distance)
        assert ward.contains(c.lat, c.lon)


def test_cameras_cover_every_ward_inner_wards_more(city: CityProfile) -> None:
    per_ward = Counter(c.ward for c in city.cameras)
    assert set(per_ward) == set(CONTRACT_WARDS)
    assert 1 <= per_ward["long-son"] < min(per_ward["phuong-1"], per_ward["thang-tam"])


def test_camera_roads_lanes_and_flags(city: CityProfile) -> None:
    counting = [c for c in city.cameras if c.kind == "traffic_counting"]
    assert all(c.arterial and 4 <= c.lanes <= 6 for c in counting)
    assert {"Đường 3 Tháng 2", "Nguyễn An Ninh", "Lê Hồng Phong", "Thùy Vân"} <= {
        c.road for c in counting
    }
    for c in city.cameras:
        assert 1 <= c.lanes <= 8
        assert c.beach_road == (c.road in BEACH_ROADS), c.camera_id
        if c.arterial:
            assert 4 <= c.lanes <= 6, c.camera_id


def test_lookups(city: CityProfile) -> None:
    first = city.camera("VT-CAM-001")
    assert first is not None and city.ward_of_camera["VT-CAM-001"] == first.ward
    assert city.camera("VT-CAM-197") is None
    assert len(city.ward_of_camera) == 196
    birth = city.procedure("1.001193")
    assert birth is not None and birth.level == "ward"
    assert city.procedure("no-such-code") is None


def test_pcu_covers_every_vehicle_class(city: CityProfile) -> None:
    assert city.pcu == {
        "bicycle": 0.2, "motorbike": 0.3, "car": 1.0, "bus": 2.5, "truck": 2.5, "other": 1.0,
    }  # fmt: skip


def test_1200_qr_shops_mostly_grocery_and_retail(city: CityProfile) -> None:
    assert [m.merchant_id for m in city.merchants] == [f"VT-M-{i:04d}" for i in range(1, 1201)]
    categories = Counter(m.category for m in city.merchants)
    assert categories["grocery"] + categories["retail"] > 0.6 * 1200
    assert all(1 <= len(m.terminals) <= 2 for m in city.merchants)
    assert {m.ward for m in city.merchants} == set(CONTRACT_WARDS)


def test_terminals_are_unique_and_resolve_to_their_owner(city: CityProfile) -> None:
    owners = [*city.merchants, *city.billers]
    all_terminals = [t for o in owners for t in o.terminals]
    assert len(all_terminals) == len(set(all_terminals))
    assert len({o.merchant_id for o in owners}) == len(owners)
    terminals = city.terminals()
    assert len(terminals) == len(all_terminals)
    for owner in owners:
        for t in owner.terminals:
            assert terminals[t] == (owner.merchant_id, owner.ward, owner.category)


def test_billers_collect_electricity_water_and_telecom(city: CityProfile) -> None:
    assert {b.category for b in city.billers} == {
        "utility_electricity",
        "utility_water",
        "utility_telecom",
    }
    assert any("Điện lực" in b.name for b in city.billers)


def test_procedures_46_fully_online_plus_some_partial(city: CityProfile) -> None:
    levels = Counter(p.service_level for p in city.procedures)
    assert levels["full"] == 46
    assert 6 <= levels["partial"] <= 10
    codes = [p.procedure_code for p in city.procedures]
    assert len(codes) == len(set(codes))
    assert all(len(code) <= 32 for code in codes)
    assert all(1 <= p.legal_days <= 15 for p in city.procedures)
    assert {p.level for p in city.procedures} == {"ward", "city"}


def test_agencies_one_committee_per_ward_and_city_departments(city: CityProfile) -> None:
    ward_level = [a for a in city.agencies if a.level == "ward"]
    assert sorted(a.ward or "" for a in ward_level) == sorted(CONTRACT_WARDS)
    assert {a.agency for a in ward_level} == {f"ubnd-{w}" for w in CONTRACT_WARDS}
    city_level = {a.agency for a in city.agencies if a.level == "city"}
    assert {"ubnd-thanh-pho", "phong-tu-phap", "cong-an-thanh-pho"} <= city_level
    assert {p.agency for p in city.procedures if p.agency} <= city_level


# --- broken profiles ---------------------------------------------------------------------


def default_document() -> dict[str, Any]:
    text = resources.files("city").joinpath("profiles/vung-tau.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def write_profile(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    document = default_document()
    change(document)
    path = tmp_path / "broken-city.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def _set_camera_ward(d: dict[str, Any]) -> None:
    d["cameras"][4]["ward"] = "phuong-6"


def _duplicate_camera(d: dict[str, Any]) -> None:
    d["cameras"][1]["camera_id"] = "VT-CAM-001"


def _share_terminal(d: dict[str, Any]) -> None:
    d["billers"][0]["terminals"][0] = d["merchants"][0]["terminals"][0]


def _drop_pcu(d: dict[str, Any]) -> None:
    del d["pcu"]["motorbike"]


def _unknown_kind(d: dict[str, Any]) -> None:
    d["cameras"][0]["kind"] = "speed_gun"


def _extra_field(d: dict[str, Any]) -> None:
    d["cameras"][0]["colour"] = "white"


def _unknown_unit(d: dict[str, Any]) -> None:
    d["wards"][16]["unit_2025"] = "xa-con-dao"


def _merchant_ward(d: dict[str, Any]) -> None:
    d["merchants"][9]["ward"] = "ben-thanh"


def _bad_timezone(d: dict[str, Any]) -> None:
    d["timezone"] = "Asia/Vung_Tau"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set_camera_ward, ["cameras.4.ward", "'phuong-6'", "VT-CAM-005"]),
        (_duplicate_camera, ["cameras.camera_id", "duplicate 'VT-CAM-001'"]),
        (_share_terminal, ["merchants+billers.terminals", "duplicate 'VT-T-00001'"]),
        (_drop_pcu, ["pcu", "motorbike"]),
        (_unknown_kind, ["cameras.0.kind", "traffic_counting"]),
        (_extra_field, ["cameras.0.colour"]),
        (_unknown_unit, ["wards.16.unit_2025", "'xa-con-dao'"]),
        (_merchant_ward, ["merchants.9.ward", "'ben-thanh'", "VT-M-0010"]),
        (_bad_timezone, ["timezone", "Asia/Vung_Tau"]),
    ],
)
def test_broken_profile_names_file_and_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    path = write_profile(tmp_path, change)
    with pytest.raises(CityProfileError) as caught:
        load_city_profile(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert isinstance(caught.value, VtopsError)


def test_unchanged_copy_of_default_loads_from_a_path(tmp_path: Path) -> None:
    path = write_profile(tmp_path, lambda d: None)
    loaded = load_city_profile(path)
    assert loaded == load_city_profile()
    assert loaded is not load_city_profile()


def test_invalid_json_and_missing_file_are_profile_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "Vũng Tàu",', encoding="utf-8")
    with pytest.raises(CityProfileError, match=r"bad\.json"):
        load_city_profile(bad)
    with pytest.raises(CityProfileError, match=r"cannot read city profile .*missing\.json"):
        load_city_profile(tmp_path / "missing.json")


def test_model_copy_revalidates_and_rebuilds_lookups(city: CityProfile) -> None:
    smaller = city.model_copy(update={"cameras": city.cameras[:3]})
    assert len(smaller.ward_of_camera) == 3 and smaller.camera("VT-CAM-010") is None
    assert len(city.ward_of_camera) == 196


def test_point_distance_km() -> None:
    one_degree = Point(lat=10.0, lon=107.0).distance_km(Point(lat=11.0, lon=107.0))
    assert one_degree == pytest.approx(111.2, abs=0.1)
