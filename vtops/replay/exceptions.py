"""What the replay tools refuse to do, and why."""

from __future__ import annotations

from city.exceptions import VtopsError


class ReplayError(VtopsError):
    """A replay command cannot run as asked: a bad option, a busy group, a bad archive."""


class GroupBusyError(ReplayError):
    """The app's consumer group has live members: offsets and state cannot move under them."""
