"""The MX's parse processes: a ``ProcessPoolExecutor`` that replaces itself when one of them dies.

A ``concurrent.futures.ProcessPoolExecutor`` whose worker process dies (killed by the kernel's
OOM killer, a crash in a C extension) is *broken* for good: the calls in flight and every later
call raise ``BrokenProcessPool``. For the MX that meant answering 451 to all mail until someone
restarted it. :class:`RespawningProcessPool` keeps the standard executor and its behaviour, and
on ``BrokenProcessPool`` swaps in a fresh pool: the calls that were in flight still fail (their
SMTP clients get 451 and retry), the ones after run normally.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

log = logging.getLogger("mailkite.parse_pool")


class RespawningProcessPool(Executor):
    """An :class:`~concurrent.futures.Executor` over ``make_pool()`` (a ``ProcessPoolExecutor``
    factory), replaced by a new one when it breaks. ``submit`` raises what the current pool's
    ``submit`` raises, except ``BrokenProcessPool`` (it retries once on a fresh pool)."""

    def __init__(self, make_pool: Callable[[], ProcessPoolExecutor]) -> None:
        self._make_pool = make_pool
        self._lock = threading.Lock()
        self._pool = make_pool()
        self.replacements = 0  # how many times a broken pool was replaced

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        pool = self._current()
        try:
            future = pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            pool = self._replace(pool)
            future = pool.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda f, pool=pool: self._check(f, pool))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._current().shutdown(wait=wait, cancel_futures=cancel_futures)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            return self._pool

    def _check(self, future: Future, pool: ProcessPoolExecutor) -> None:
        if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
            self._replace(pool)

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """Swap ``broken`` for a new pool (once, however many calls saw it break)."""
        with self._lock:
            if self._pool is broken:
                self._pool = self._make_pool()
                self.replacements += 1
                log.error("parse_pool.replaced", extra={"kv": {"reason": "a parse process died"}})
                broken.shutdown(wait=False, cancel_futures=True)
            return self._pool
