"""The kinds of traffic alert, stated once: the simulator injects the camera kinds, the
`vtops simulate --incident` help lists them, the rules raise them all."""

from __future__ import annotations

from typing import Literal, get_args

# What one camera does wrong; the simulator can inject each of them.
CameraKind = Literal[
    "camera_offline",
    "camera_silent",
    "camera_stuck",
    "congestion",
    "flow_drop",
    "flow_surge",
    "violation_spike",
]
# What many cameras do together, raised for a whole partition.
PartitionKind = Literal["site_offline", "citywide_shift"]
Kind = CameraKind | PartitionKind

CAMERA_KINDS: tuple[CameraKind, ...] = get_args(CameraKind)
