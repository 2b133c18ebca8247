"""The one log format of every execgate process: JSON lines on stderr.

Every line has `ts` (ISO-8601 UTC, milliseconds), `level`, `logger` and `msg`, plus
the record's extra fields (`logger.info("…", extra={"port": 8080})`). Passwords in URLs
are masked everywhere in the line (`observability.redaction`). Access lines
(`observability.json_lines`) carry the same four fields, written without `logging`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Final

import orjson

from observability.redaction import redact

# LogRecord attributes that are not "extra" fields given by the caller.
_STANDARD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)

_second_cache: tuple[int, str] = (-1, "")


def utc_timestamp(seconds: float) -> str:
    """`seconds` since the epoch as `2026-12-04T18:30:00.123Z`.

    The text up to the second is kept between calls: access lines come many per second.
    """
    global _second_cache
    whole = int(seconds)
    cached_second, prefix = _second_cache
    if whole != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second_cache = (whole, prefix)
    return f"{prefix}.{int((seconds - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """Formats a log record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # The whole line at once: message, fields of any type, traceback.
        return redact(orjson.dumps(entry, default=str).decode())


def configure_logging(level: str) -> None:
    """Send every log record of this process to stderr as one JSON line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
