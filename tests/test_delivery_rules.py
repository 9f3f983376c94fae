"""Retry schedule, Retry-After and the attempt classification (pure rules, table-tested)."""

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from delivery.outcome import AttemptResult, Verdict, classify
from delivery.schedule import RETRY_AFTER_CAP_S, next_delay, parse_retry_after

SCHEDULE = (0.0, 5.0, 300.0)


@pytest.mark.parametrize("status,attempt,verdict", [
    (200, 1, Verdict.DELIVERED), (204, 3, Verdict.DELIVERED), (299, 2, Verdict.DELIVERED),
    (410, 1, Verdict.ENDPOINT_GONE),
    (500, 1, Verdict.RETRY), (301, 1, Verdict.RETRY), (404, 2, Verdict.RETRY), (None, 1, Verdict.RETRY),
    (500, 3, Verdict.FAILED), (None, 3, Verdict.FAILED),
])
def test_classify(status, attempt, verdict):
    assert classify(AttemptResult(status, 1.0), attempt, SCHEDULE).verdict == verdict


def test_retry_delay_follows_schedule_with_ten_percent_jitter():
    rng = random.Random(7)
    delays = [classify(AttemptResult(500, 1.0), 2, SCHEDULE, rng).delay_s for _ in range(500)]
    assert min(delays) >= 270 and max(delays) <= 330
    assert max(delays) - min(delays) > 30  # jitter is really applied


def test_retry_after_overrides_on_429_and_503_only():
    r = AttemptResult(429, 1.0, retry_after_s=42.0)
    assert classify(r, 1, SCHEDULE).delay_s == 42.0
    r = AttemptResult(500, 1.0, retry_after_s=42.0)
    assert 4.5 <= classify(r, 1, SCHEDULE).delay_s <= 5.5


def test_schedule_exhaustion():
    assert next_delay(3, SCHEDULE) is None
    assert next_delay(0, SCHEDULE) == 0.0


def test_parse_retry_after():
    now = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(str(10**9)) == RETRY_AFTER_CAP_S
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
