"""`vtops worker --log-format json`: one JSON object per log line, for log collectors.

The text logs already carry their facts as `key=value` fields ("assigned topic=camera.events
partition=3 offset=41"); a JSON line holds the same fields as keys, numbers as numbers, beside
the time, level, logger and the message itself, so a collector can filter on `partition` as a
reader greps for it.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

# A field: a lower-case name, '=', and a value up to the next space (or a quoted string).
_FIELD = re.compile(r'\b([a-z][a-z0-9_]*)=("[^"]*"|\S+)')
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")
# What a record says about itself; a field of the same name in the message does not replace it.
_RESERVED = frozenset({"ts", "level", "logger", "message", "pid", "exc"})


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def _value(raw: str) -> Any:
    if raw.startswith('"') and raw.endswith('"'):
        return raw[1:-1]
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def fields_of(message: str) -> dict[str, Any]:
    """The message's `key=value` fields, in order."""
    return {key: _value(raw) for key, raw in _FIELD.findall(message) if key not in _RESERVED}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": message,
            **fields_of(message),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def logging_config(log_format: LogFormat) -> dict[str, Any] | None:
    """Faust's (mode's) logging configuration with our formatter, merged over its own; None
    keeps its text lines."""
    if log_format is LogFormat.text:
        return None
    return {
        "merge": True,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
    }
