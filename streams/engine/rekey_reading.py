"""Reading a re-key topic's records against the input clocks of the window stage that owns them.

The formats are streams/engine/records.py's; this module holds what a reader of them decides:
- `apply_watermark`: a router's watermark into the input clocks;
- `refuse_forged_forwards`, `checked_origin`: a record whose stream time only a forger could
  send (past `latest_ms`, the wall clock plus twice the skew) or a forward without its origin
  is refused whole, as one InvalidEvent naming its field, before any of it folds: a forged time
  could close every window for good;
- `folded_values`: the values of a record that a state with these clocks has folded, for restore.

Pure and synchronous, no I/O; the window stage (streams/engine/window_stage.py) counts, folds
and dead-letters around it.
"""

from __future__ import annotations

from aiokafka import ConsumerRecord

from schemas.exceptions import InvalidEvent
from streams.engine.records import Forward, Origin, forwards_of, origin_of, read_watermark
from streams.engine.windows import InputClocks

_FORGED = "further ahead of the wall clock than twice VTOPS_MAX_CLOCK_SKEW_S"


def apply_watermark(inputs: InputClocks, value: bytes | None, latest_ms: int) -> None:
    """Apply a router's watermark: its input partitions' stream times and idleness. A stream
    time past `latest_ms` is no router's (they refuse such events) and refused whole."""
    partitions, clocks = read_watermark(value)
    if any(t is not None and t > latest_ms for t, _ in clocks.values()):
        raise InvalidEvent(f"payload: a watermark's stream time {_FORGED}")
    inputs.partitions = partitions
    for input_partition, (stream_time_ms, idle) in clocks.items():
        clock = inputs.clock(input_partition)
        clock.idle = idle
        if stream_time_ms is not None:
            clock.advance(stream_time_ms)


def refuse_forged_forwards(forwards: list[Forward], latest_ms: int) -> None:
    if any(stream_time_ms > latest_ms for _, stream_time_ms, _ in forwards):
        raise InvalidEvent(f"payload: a forward's stream time {_FORGED}")


def checked_origin(origin: Origin | None, latest_ms: int) -> Origin:
    """The origin of a record of the one-per-forward format, refused when absent or forged."""
    if origin is None:
        raise InvalidEvent("headers: no vtops.origin header")
    if origin.stream_time_ms > latest_ms:
        raise InvalidEvent(f"headers: a vtops.origin stream time {_FORGED}")
    return origin


def folded_values(inputs: InputClocks, record: ConsumerRecord) -> list[bytes | None]:
    """The values of a re-key topic's record that a state with `inputs` has folded, in order.

    A forward past its input partition's clock was never folded into this state: a reset
    (vtops/replay/rebuild.py) left it out, and the router sends it again. InvalidEvent for a
    malformed record."""
    forwards = forwards_of(record.headers, record.value)
    if forwards is not None:
        partition, entries = forwards
        clock = inputs.clocks.get(partition)
        if clock is None:
            return []
        return [v for o, _, v in entries if o <= clock.offset]
    origin = origin_of(record.headers)
    clock = None if origin is None else inputs.clocks.get(origin.partition)
    if origin is None or clock is None or origin.offset > clock.offset:
        return []
    return [record.value]
