"""When to try again: the retry schedule with jitter, and ``Retry-After`` (RFC 9110 §10.2.3)."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

JITTER = 0.10
RETRY_AFTER_CAP_S = 86_400.0


def next_delay(attempts_made: int, schedule: tuple[float, ...], rng: random.Random | None = None) -> float | None:
    """Seconds to wait before the next attempt after ``attempts_made`` attempts, with ±10% jitter;
    None when the schedule is exhausted. ``schedule[i]`` is the delay before attempt ``i + 1``."""
    if attempts_made >= len(schedule):
        return None
    delay = schedule[attempts_made]
    return delay * (1 + (rng or random).uniform(-JITTER, JITTER))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value (delay-seconds or an HTTP-date), capped at one day;
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)
