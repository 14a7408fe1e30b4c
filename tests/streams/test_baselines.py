"""The detector finds a minute's baseline by the slot of that minute in the city's own zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from streams.traffic.anomaly.baselines import Baselines, SlotBaseline

LISBON = ZoneInfo("Europe/Lisbon")
VUNG_TAU = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_minute_is_looked_up_in_the_slot_of_the_citys_clock() -> None:
    evening = SlotBaseline(12.0, 2.0, 30.0, 3.0, 0.01, {"car": 1.0})
    baselines = Baselines({("VT-CAM-001", "weekday", 80): evening}, version=1)
    # Friday 20:05 in Lisbon: a weekday's slot 80 there, Saturday 03:05 in Vũng Tàu.
    ts_ms = int(datetime(2024, 9, 20, 20, 5, tzinfo=LISBON).timestamp() * 1000)
    assert baselines.at("VT-CAM-001", ts_ms, LISBON) is evening
    assert baselines.at("VT-CAM-001", ts_ms, VUNG_TAU) is None
