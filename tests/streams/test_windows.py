"""Event-time windows: grace, lateness and dedup, driven directly without Kafka."""

from __future__ import annotations

from streams.windows import PartitionWindows

MINUTE = 60_000
GRACE = 120_000


def _state() -> PartitionWindows[list[str]]:
    return PartitionWindows(GRACE, lambda _group: [])


def _fold(state: PartitionWindows[list[str]], event_id: str, ts: int, offset: int) -> bool:
    if not state.is_new(event_id):
        return False
    start = ts - ts % MINUTE
    window = state.admit(event_id, ("cam",), start, start + MINUTE, ts, offset)
    if window is None:
        return False
    window.acc.append(event_id)
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


def test_duplicate_changes_nothing_not_even_stream_time() -> None:
    state = _state()
    assert _fold(state, "a", 10_000, 0)
    assert not _fold(state, "a", 10 * MINUTE, 1)
    assert state.stream_time_ms == 10_000
    assert state.counters.duplicates == 1
    assert state.counters.accepted == 1


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
    assert restored.seen == {"a": (("cam",), 0)}
