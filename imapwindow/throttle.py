"""Failed-login throttles for the IMAP window, per client address (DESIGN.md "App-passwords": wrong
passwords are throttled per client address).

At most ``max_failures`` failed logins per address within a sliding window of ``window_s``
seconds; past that, :meth:`retry_after` says how long the address must wait.

- :class:`LoginThrottle` counts in this process's memory.
- :class:`SharedLoginThrottle` counts in Redis, so every IMAP process of an installation (``serve``'s
  and those of ``mailkite imap`` on other machines behind one name) sees the same failures: an
  address cannot multiply its guesses by the number of processes. Each address is one sorted set
  of failure times (Unix seconds), trimmed to the last ``max_failures`` and expiring with the
  window; each check or failure is one pipelined round trip. When Redis does not answer within
  :data:`REDIS_TIMEOUT_S`, the process's own count decides (logins go on; the limit is then per
  process until Redis is back).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict, deque

import redis.asyncio as aioredis
from redis.exceptions import RedisError

MAX_TRACKED_ADDRESSES = 100_000
KEY_PREFIX = "mailkite:imap:auth-failures:"
REDIS_TIMEOUT_S = 0.5
log = logging.getLogger("mailkite.imap")


class LoginThrottle:
    """At most ``max_failures`` failed logins per client address within ``window_s`` seconds, counted
    in this process (bounded: the :data:`MAX_TRACKED_ADDRESSES` most recent addresses)."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        q = self._failures.get(address)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            self._failures.pop(address, None)
        return q

    async def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again (0 when it may now)."""
        return self.local_retry_after(address)

    def local_retry_after(self, address: str) -> float:
        now = time.monotonic()
        q = self._recent(address, now)
        if len(q) < self.max_failures:
            return 0.0
        return max(0.0, q[0] + self.window_s - now)

    async def failed(self, address: str) -> None:
        """Count one failed login from ``address``."""
        self.local_failed(address)

    def local_failed(self, address: str) -> None:
        now = time.monotonic()
        q = self._failures.setdefault(address, deque())
        q.append(now)
        self._failures.move_to_end(address)
        while len(q) > self.max_failures:
            q.popleft()
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)

    async def forget(self, address: str) -> None:
        """Drop ``address``'s failures (an operator's unblock; tests)."""
        self._failures.pop(address, None)

    async def aclose(self) -> None:
        """Release what the throttle holds (nothing here)."""


class SharedLoginThrottle(LoginThrottle):
    """:class:`LoginThrottle` counted in Redis at ``redis_url`` (see the module docstring); the
    in-process count is kept too, as the fallback while Redis is unreachable."""

    def __init__(self, max_failures: int, window_s: float, redis_url: str) -> None:
        super().__init__(max_failures, window_s)
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                              socket_connect_timeout=REDIS_TIMEOUT_S)
        self._warned = False

    async def retry_after(self, address: str) -> float:
        key = KEY_PREFIX + address
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(key, "-inf", now - self.window_s)
                pipe.zrange(key, 0, 0, withscores=True)
                pipe.zcard(key)
                _, oldest, count = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return self.local_retry_after(address)
        self._warned = False
        if count < self.max_failures or not oldest:
            return 0.0
        return max(0.0, oldest[0][1] + self.window_s - now)

    async def failed(self, address: str) -> None:
        self.local_failed(address)
        key = KEY_PREFIX + address
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {f"{now:.6f}:{os.urandom(4).hex()}": now})
                pipe.zremrangebyrank(key, 0, -(self.max_failures + 1))  # keep the newest max_failures
                pipe.expire(key, max(1, int(self.window_s) + 1))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._unreachable(exc)

    async def forget(self, address: str) -> None:
        await super().forget(address)
        try:
            await self._redis.delete(KEY_PREFIX + address)
        except (RedisError, OSError) as exc:
            self._unreachable(exc)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _unreachable(self, exc: BaseException) -> None:
        if not self._warned:  # once per outage, not once per login
            log.warning("imap.throttle_redis_unavailable", extra={"kv": {"error": str(exc)[:200]}})
            self._warned = True
