"""Event-time windows: grace, lateness and dedup, driven directly without Kafka."""

from __future__ import annotations

import sys

import orjson

from streams.engine.windows import InputClocks, PartitionWindows, Window, dedup_key

MINUTE = 60_000
GRACE = 120_000


def _state() -> PartitionWindows[list[str]]:
    return PartitionWindows(GRACE, lambda _group: [])


def _fold(
    state: PartitionWindows[list[str]],
    event_id: str,
    ts: int,
    offset: int,
    source_time: int | None = None,
) -> bool:
    start = ts - ts % MINUTE
    seen_as = dedup_key(event_id)
    if state.is_late(start + MINUTE, ts, source_time) or not state.is_new(seen_as):
        return False
    state.admit(seen_as, ("cam",), start, start + MINUTE, offset).acc.append(event_id)
    return True


def test_window_accepts_until_stream_time_reaches_end_plus_grace() -> None:
    state = _state()
    assert _fold(state, "a", 10_000, 0)
    assert _fold(state, "b", MINUTE + GRACE - 1, 1)  # stream time just short of end + grace
    assert _fold(state, "c", 59_999, 2)  # still accepted
    assert _fold(state, "d", MINUTE + GRACE, 3)  # stream time reaches end + grace
    assert not _fold(state, "e", 30_000, 4)  # now late
    assert state.counters.late == 1
    assert state.windows[(("cam",), 0)].acc == ["a", "c"]


def test_duplicate_changes_nothing() -> None:
    state = _state()
    assert _fold(state, "a", 10_000, 0)
    assert _fold(state, "b", 20_000, 1)
    assert not _fold(state, "a", 10_000, 2)
    assert state.stream_time_ms == 20_000
    assert state.counters.duplicates == 1
    assert state.counters.accepted == 2
    assert state.windows[(("cam",), 0)].acc == ["a", "b"]


def test_a_copy_whose_window_its_partition_has_passed_is_late_not_a_duplicate() -> None:
    state = _state()
    assert _fold(state, "a", 10_000, 0)
    assert _fold(state, "b", MINUTE + GRACE, 1)  # closes 07:00 by this partition's time
    assert not _fold(state, "a", 10_000, 2)
    assert (state.counters.late, state.counters.duplicates) == (1, 0)


def _rekeyed(partitions: int) -> PartitionWindows[list[str]]:
    state = _state()
    state.inputs = InputClocks(partitions)
    return state


def test_a_routed_event_is_judged_by_its_input_partitions_stream_time() -> None:
    state = _rekeyed(2)
    # Input partition 1 is far ahead; partition 0 is behind and its events are on time.
    assert _fold(state, "ahead", 10 * MINUTE, 0, source_time=10 * MINUTE)
    assert _fold(state, "behind", 10_000, 1, source_time=10_000)
    assert not _fold(state, "late", 20_000, 2, source_time=MINUTE + GRACE)
    assert state.counters.late == 1
    assert state.windows[(("cam",), 0)].acc == ["behind"]


def test_windows_of_a_rekeyed_stage_close_when_every_input_partition_has_passed() -> None:
    state = _rekeyed(2)
    assert state.inputs is not None
    _fold(state, "a", 10_000, 0, source_time=10_000)
    state.inputs.clock(0).stream_time_ms = 10 * MINUTE
    assert state.take_changes()[1] == []  # partition 1 unknown: nothing closes
    state.inputs.clock(1).stream_time_ms = MINUTE + GRACE - 1
    assert state.take_changes()[1] == []
    state.inputs.clock(1).stream_time_ms = MINUTE + GRACE
    assert [w.start_ms for w in state.take_changes()[1]] == [0]
    # Windows closed by the inputs stay closed for an input partition that was idle.
    assert not _fold(state, "b", 20_000, 1, source_time=20_000)
    assert state.counters.late == 1


def test_idle_input_partitions_stop_holding_windows_back() -> None:
    clocks = InputClocks(3)
    clocks.clock(0).stream_time_ms = 5 * MINUTE
    clocks.clock(1).stream_time_ms = 9 * MINUTE
    clocks.clock(2).idle = True  # never had data, caught up
    assert clocks.watermark() == 5 * MINUTE
    clocks.clock(0).idle = True
    assert clocks.watermark() == 9 * MINUTE
    clocks.clock(1).idle = True
    assert clocks.watermark() == 9 * MINUTE  # all idle: the latest of them
    clocks.clock(2).idle = False
    assert clocks.watermark() is None  # busy and no stream time yet: holds everything
    assert InputClocks.from_state(clocks.to_state()) == clocks


def test_closing_forgets_ids_and_reports_final_windows_once() -> None:
    state = _state()
    _fold(state, "a", 10_000, 0)
    _fold(state, "b", 5 * MINUTE, 1)
    changed, closed = state.take_changes()
    assert [w.start_ms for w in closed] == [0]
    assert [w.start_ms for w in changed] == [5 * MINUTE]
    assert "a" not in state.seen and "b" in state.seen
    assert state.take_changes() == ([], [])
    # The id of a closed window is forgotten; its copy is late, not a duplicate.
    assert not _fold(state, "a", 10_000, 2)
    assert state.counters.late == 1


HEX_ID = "0123456789abcdef" * 2


def test_dedup_holds_a_hex_id_as_its_bytes_and_every_other_id_as_itself() -> None:
    assert dedup_key(HEX_ID) == bytes.fromhex(HEX_ID)
    assert sys.getsizeof(dedup_key(HEX_ID)) < sys.getsizeof(HEX_ID) - 30
    # Ids that int(…, 16) or unhexlify would read as the same 16 bytes, and others that are
    # not the contract's usual spelling: each stays a string, so none meets another id.
    others = [
        HEX_ID.upper(),
        "0123456789ABCDEF" + HEX_ID[16:],
        "0x" + HEX_ID[2:],
        "0X" + HEX_ID[2:],
        "0_" + HEX_ID[2:],
        " " + HEX_ID[1:],
        "+" + HEX_ID[1:],
        "٠" + HEX_ID[1:],  # an Arabic-Indic zero, a digit to int()
        HEX_ID[:31],
        HEX_ID + "0",
        "t1",
        "",
    ]
    assert [dedup_key(i) for i in others] == others
    ids = [HEX_ID, "1" * 32, "0" * 32, "f" * 32, *others]
    keys = [dedup_key(i) for i in ids]
    assert len(set(keys)) == len(set(ids)) == len(ids)
    assert dedup_key("1" * 32) == b"\x11" * 16  # 32 decimal digits are lower-case hex too


def test_dedup_is_exact_for_hex_ids_their_other_spellings_and_restore() -> None:
    state = _state()
    assert _fold(state, HEX_ID, 1_000, 0)
    assert not _fold(state, HEX_ID, 2_000, 1)  # the same id again
    assert _fold(state, HEX_ID.upper(), 3_000, 2)  # ids are case-sensitive: another event
    assert _fold(state, "0x" + HEX_ID[2:], 4_000, 3)
    assert not _fold(state, HEX_ID.upper(), 5_000, 4)
    assert (state.counters.accepted, state.counters.duplicates) == (3, 2)
    restored = _state()
    restored.windows = state.windows
    for window in restored.windows.values():
        window.event_ids = []
    restored.remember(dedup_key(HEX_ID), (("cam",), 0), 0)
    assert not _fold(restored, HEX_ID, 6_000, 5)
    assert _fold(restored, HEX_ID[:31] + "0", 7_000, 6)


def test_remember_relearns_only_ids_inside_an_open_window_range() -> None:
    state = _state()
    _fold(state, "a", 10_000, 5)
    _fold(state, "b", 20_000, 6)
    restored = _state()
    restored.windows = state.windows
    for window in restored.windows.values():
        window.event_ids = []
    restored.remember("a", (("cam",), 0), 5)
    restored.remember("x", (("cam",), 0), 4)  # before the window's first offset
    restored.remember("y", (("cam",), 60_000), 6)  # no such open window
    assert restored.seen == {"a"}


def test_a_saved_partition_comes_back_as_it_was_but_for_its_ids() -> None:
    """Meta and windows through their saved form (JSON, as `stream_state` holds them): the
    clocks, counters, input clocks and windows return; the ids are re-read by restore."""
    state = _state()
    state.inputs = InputClocks(2)
    state.inputs.clock(1).advance(MINUTE)
    state.leaders.see("cam-1", 5_000)
    assert _fold(state, "a", 10_000, 0, source_time=10_000)
    assert _fold(state, "b", 20_000, 3, source_time=20_000)
    assert not _fold(state, "a", 20_000, 4, source_time=20_000)

    restored = _state()
    restored.restore(orjson.loads(orjson.dumps(state.to_state())))
    for saved in state.windows.values():
        value = orjson.loads(orjson.dumps(saved.to_state(lambda acc: {"ids": acc})))
        window = Window.from_state(value, lambda _group, acc: list(acc["ids"]))
        restored.windows[window.key] = window

    assert restored.to_state() == state.to_state()
    assert restored.counters.duplicates == 1
    assert restored.inputs is not None and restored.inputs.clock(1).stream_time_ms == MINUTE
    (window,) = restored.windows.values()
    assert (window.group, window.start_ms, window.end_ms) == (("cam",), 0, MINUTE)
    assert (window.first_offset, window.last_offset, window.acc) == (0, 3, ["a", "b"])
    assert window.event_ids == [] and restored.seen == set()
