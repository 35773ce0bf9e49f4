"""Times and durations as users write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from charter.errors import InvalidInput

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone means UTC; a bare date means its midnight, UTC."""
    cleaned = text.strip()
    try:
        when = datetime.fromisoformat(cleaned.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a time; expected ISO 8601 such as 2026-03-01, 2026-03-01T14:30 or "
            "2026-03-01T14:30:00+01:00 (no zone means UTC)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `12h`, `3d`, `2w`."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise InvalidInput(f"{text!r} is not a duration; expected a number and a unit s, m, h, d or w (3d)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def require_aware(now: datetime) -> None:
    """Refuse a naive datetime: every instant charter handles is timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC)")


def iso_or_none(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def time_or_none(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
