"""The MX's parse processes survive one of them dying (inbound/parse_pool.py), with real processes."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest

from inbound.parse_pool import RespawningProcessPool


def pid() -> int:
    return os.getpid()


def die() -> None:
    os._exit(9)  # what the OOM killer or a crashing C extension does to a parse process


def _pool() -> RespawningProcessPool:
    return RespawningProcessPool(lambda: ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")))


def test_a_dead_process_fails_its_call_and_the_next_call_runs_in_a_fresh_pool() -> None:
    pool = _pool()
    try:
        first = pool.submit(pid).result(60)
        with pytest.raises(BrokenProcessPool):
            pool.submit(die).result(60)
        second = pool.submit(pid).result(60)  # a plain ProcessPoolExecutor raises here, forever
        third = pool.submit(pid).result(60)
    finally:
        pool.shutdown()
    assert pool.replacements == 1
    assert first != second == third and os.getpid() not in (first, second)


def test_exceptions_of_the_call_itself_leave_the_pool_alone() -> None:
    pool = _pool()
    try:
        with pytest.raises(ZeroDivisionError):
            pool.submit(divmod, 1, 0).result(60)
        assert pool.submit(divmod, 7, 2).result(60) == (3, 1)
    finally:
        pool.shutdown()
    assert pool.replacements == 0
