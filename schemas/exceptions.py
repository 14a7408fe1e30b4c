"""Errors raised while decoding input events."""

from __future__ import annotations

from city.exceptions import VtopsError


class InvalidEvent(VtopsError):
    """An input message breaks the contract; `reason` names the field and the value's fault.

    Callers turn it into a dead letter: it is data about bad input, never a crash.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
