"""What an attempt's result means for the event: delivered, try again later, or give up.

Pure. Rules (DESIGN.md "Webhooks"): a 2xx within the timeout is success; 410 Gone disables the
endpoint; anything else (other status, timeout, connection error, a redirect, which is not
followed) is a failed attempt retried on the schedule, except that ``Retry-After`` on 429/503
sets the delay (capped); after the last attempt the event is failed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from delivery.schedule import next_delay


class Verdict(str, Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    ENDPOINT_GONE = "endpoint_disabled"


@dataclass(frozen=True)
class AttemptResult:
    """One HTTP attempt. ``status_code`` None when no response came (``error`` says why);
    ``latency_ms`` wall time; ``retry_after_s`` from a ``Retry-After`` header if any."""

    status_code: int | None
    latency_ms: float
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    delay_s: float | None = None  # for RETRY: seconds until the next attempt


def classify(result: AttemptResult, attempts_made: int, schedule: tuple[float, ...],
             rng: random.Random | None = None) -> Outcome:
    """Decide after attempt number ``attempts_made`` (1-based, this one included)."""
    if result.ok:
        return Outcome(Verdict.DELIVERED)
    if result.status_code == 410:
        return Outcome(Verdict.ENDPOINT_GONE)
    delay = next_delay(attempts_made, schedule, rng)
    if delay is None:
        return Outcome(Verdict.FAILED)
    if result.status_code in (429, 503) and result.retry_after_s is not None:
        delay = result.retry_after_s
    return Outcome(Verdict.RETRY, delay)
