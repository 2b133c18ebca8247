"""RFC 3339 timestamps and protojson durations, both directions.

Format (as protojson): UTC with `Z`, fractional seconds with 0, 3, 6 or 9 digits, the
fewest that are exact: `2026-11-28T20:31:35Z`, `2026-11-28T20:31:35.120Z`,
`2026-11-28T20:31:35.123456Z`. Durations: `"1.5s"` style, `"-0.250s"`, `"3s"`.
Parsing accepts any RFC 3339 offset (converted to UTC) and 1-9 fractional digits.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta

_EPOCH = datetime(1970, 1, 1)
# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range RFC 3339 can write.
MIN_TIMESTAMP_SECONDS = -62135596800
MAX_TIMESTAMP_SECONDS = 253402300799
MAX_DURATION_SECONDS = 315576000000  # +-10,000 years, as google/protobuf/duration.proto
_NANOS = 1_000_000_000

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_DURATION = re.compile(r"(-)?(\d+)(?:\.(\d{1,9}))?s", re.ASCII)


def _fraction(nanos: int) -> str:
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1000 == 0:
        return f".{nanos // 1000:06d}"
    return f".{nanos:09d}"


@functools.lru_cache(maxsize=1024)
def _date_text(days_since_epoch: int) -> str:
    return (_EPOCH + timedelta(days=days_since_epoch)).date().isoformat()


# Cached: a record's timestamps never change, and hot records are read again and again.
@functools.lru_cache(maxsize=4096)
def format_timestamp(seconds: int, nanos: int) -> str:
    """RFC 3339 UTC text of a Timestamp; ValueError when outside years 1-9999 or nanos invalid."""
    if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS or not 0 <= nanos < _NANOS:
        raise ValueError(f"timestamp out of range: seconds={seconds} nanos={nanos}")
    # Per-day date text is cached: this runs for every timestamp of every response.
    days, second_of_day = divmod(seconds, 86400)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{_date_text(days)}T{hour:02d}:{minute:02d}:{second:02d}{_fraction(nanos)}Z"


def parse_timestamp(text: str) -> tuple[int, int]:
    """(seconds, nanos) of an RFC 3339 date-time with an explicit offset; ValueError otherwise."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if second == 60:  # RFC 3339 allows a leap second: read it as the minute's last second
        second = 59
    local = datetime(year, month, day, hour, minute, second)  # ValueError for a bad date
    seconds = (local - _EPOCH) // timedelta(seconds=1)
    if match.group(9):
        offset_hours, offset_minutes = int(match.group(10)), int(match.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            raise ValueError("invalid UTC offset")
        offset = offset_hours * 3600 + offset_minutes * 60
        seconds -= offset if match.group(9) == "+" else -offset
    if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS:
        raise ValueError("date-time outside years 1-9999")
    nanos = int((match.group(7) or "").ljust(9, "0"))
    return seconds, nanos


def format_duration(seconds: int, nanos: int) -> str:
    """protojson text of a Duration; ValueError when out of range or signs disagree."""
    if (
        abs(seconds) > MAX_DURATION_SECONDS
        or abs(nanos) >= _NANOS
        or (seconds > 0 and nanos < 0)
        or (seconds < 0 and nanos > 0)
    ):
        raise ValueError(f"duration out of range: seconds={seconds} nanos={nanos}")
    sign = "-" if seconds < 0 or nanos < 0 else ""
    return f"{sign}{abs(seconds)}{_fraction(abs(nanos))}s"


def parse_duration(text: str) -> tuple[int, int]:
    """(seconds, nanos) of a `"1.5s"`-style duration; ValueError otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError("not a duration such as '1.5s'")
    seconds = int(match.group(2))
    nanos = int((match.group(3) or "").ljust(9, "0"))
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError("duration out of range")
    if match.group(1):
        seconds, nanos = -seconds, -nanos
    return seconds, nanos
