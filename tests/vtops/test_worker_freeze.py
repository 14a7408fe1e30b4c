"""The worker freezes what its start made, after collecting the start's garbage (issue 20)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from vtops.cli.worker import freeze_what_started


class _Rows:
    """Stands for a driver's query result: garbage only a collection frees, being a cycle."""

    def __init__(self) -> None:
        self.rows = [(n, str(n)) for n in range(1000)]
        self.me = self


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_start_garbage_in_a_cycle_is_freed_not_frozen() -> None:
    gc.collect()
    result = _Rows()
    freed = weakref.ref(result)
    del result
    kept = [_Rows()]

    freeze_what_started()

    assert freed() is None
    assert gc.get_freeze_count() > 0
    assert kept[0].me is kept[0]
    # Frozen garbage is never freed: a full collection after the freeze cannot take it back.
    gc.collect()
    assert freed() is None
