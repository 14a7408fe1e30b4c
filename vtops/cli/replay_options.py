"""Options the replay commands share, with one help text each."""

from __future__ import annotations

from typing import Annotated

import typer

from vtops.replay.times import Clock

ClockOption = Annotated[
    Clock,
    typer.Option(
        help="event: the events' own time, as windows are counted; kafka: the messages' "
        "timestamps (when they were produced), as Kafka's tools count"
    ),
]
STREAMS_HELP = "comma-separated streams (traffic or camera, payments, portal); default: all"
