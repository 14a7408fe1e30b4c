"""Errors of the stream engine."""

from __future__ import annotations

from city.exceptions import VtopsError


class UnreadableBatch(VtopsError):
    """Records that neither aiokafka nor the engine's own batch reader can read: the worker
    stops (exit 1) rather than skip them unseen."""


class WorkerFault(VtopsError):
    """A fault of the worker met while a stream folds a record, not a fault of the record
    (the traffic baselines could not be read): the stage raises it out of its fold, so that
    the engine stops (exit 1) and a restart resumes from the last saved state. A dead letter
    would drop the record from windows that have already taken its id, and commit past it."""
