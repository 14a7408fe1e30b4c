"""What a dead letter's reason must be, checked the same way in-process and through the worker."""

from __future__ import annotations

from tests.fuzz.messages import MARK

# What a reason may name besides a field of the event: the value as a whole, the headers.
WHOLE = frozenset({"payload"})


def reason_problem(reason: str, blame: frozenset[str]) -> str | None:
    """None when `reason` names one of the `blame` fields (a path under it counts) and quotes
    no made-up value; otherwise what is wrong with it."""
    named, colon, rule = reason.partition(": ")
    if not colon or not rule:
        return f"no 'field: rule' shape: {reason!r}"
    if named.split(".")[0] not in blame:
        return f"names {named!r}, expected one of {sorted(blame)}: {reason!r}"
    if MARK in reason:
        return f"quotes the rejected value: {reason!r}"
    return None
