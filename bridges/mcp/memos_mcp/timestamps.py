"""Times as the tools take and give them.

In: an ISO-8601 string ("2024-06-01", "2024-06-01T09:30:00Z",
"2024-06-01T09:30:00+01:00"; without a zone, UTC) or an integer count of
milliseconds since the Unix epoch. Models write dates; programs hold epoch
times; both are unambiguous. Out: always ISO-8601 in UTC with milliseconds
("2024-06-01T09:30:00.000Z"), or null where memosd keeps 0 for "not set".
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

# memosd keeps int64 milliseconds; 0 means "not set", so a time must be
# after the epoch. The end is year 9999, the last datetime can write.
_MAX_MS = 253402300799999

TIME_SCHEMA: dict[str, Any] = {
    "type": ["string", "integer"],
    "description": "ISO-8601 date or date-time (UTC unless it has a zone), "
                   "or milliseconds since the Unix epoch",
}


class BadTime(ValueError):
    pass


def parse_time(value: Any) -> int:
    """Epoch milliseconds of `value`; BadTime if it is not a time."""
    if isinstance(value, bool):
        raise BadTime("a time is an ISO-8601 string or epoch milliseconds, not a boolean")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        ms = _parse_iso(value)
    else:
        raise BadTime("a time is an ISO-8601 string or epoch milliseconds")
    if not 0 < ms <= _MAX_MS:
        raise BadTime(f"{value!r} is not between 1970 and 9999")
    return ms


def _parse_iso(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTime(f"{text!r} is not an ISO-8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    # Whole milliseconds, from integers: a float would round some of them.
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_time(ms: int) -> str | None:
    """ISO-8601 UTC with milliseconds; None for 0 (memosd's "not set")."""
    if ms <= 0 or ms > _MAX_MS:
        return None
    seconds, millis = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
