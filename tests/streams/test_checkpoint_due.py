"""When the engine's loop takes a checkpoint (streams/engine/service.py, `checkpoint_due`)."""

from __future__ import annotations

from streams.engine.service import checkpoint_due

INTERVAL_S = 1.0
MAX_PENDING = 200_000
NEXT_AT = 10.0  # the last checkpoint began at 9.0


def due(now: float, received: int, pending: int) -> bool:
    return checkpoint_due(now, NEXT_AT, INTERVAL_S, received, pending, MAX_PENDING)


def test_a_checkpoint_is_due_every_interval_whatever_the_input() -> None:
    assert due(10.0, received=500, pending=500)
    assert due(10.0, received=0, pending=0)  # a cut with nothing in it costs nothing
    assert not due(9.9, received=500, pending=500)


def test_too_many_unwritten_events_make_one_due_at_once() -> None:
    assert due(9.1, received=10_000, pending=MAX_PENDING)


def test_a_drained_input_is_written_half_an_interval_after_the_last_checkpoint() -> None:
    # The last forwards or windows of a backlog are written without waiting the interval out.
    assert due(9.5, received=0, pending=8_000)
    assert due(9.7, received=0, pending=1)


def test_not_sooner_nor_while_records_arrive_nor_with_nothing_to_write() -> None:
    assert not due(9.4, received=0, pending=8_000)  # a trickle: at most twice an interval
    assert not due(9.7, received=3, pending=8_000)  # still draining
    assert not due(9.7, received=0, pending=0)  # idle and written
