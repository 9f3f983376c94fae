"""The group-commit writer (store/writer.py) on SQLite and PostgreSQL: batches, failures, barriers."""

from __future__ import annotations

import threading
from concurrent.futures import wait

import pytest
from sqlalchemy import func, insert, select

from store.models import Account, utcnow
from store.writer import BatchWriter, defer_insert, defer_prepare

ACCOUNTS = Account.__table__


def _add_account(account_id: str):
    def job(session):
        session.connection().execute(insert(ACCOUNTS).values(id=account_id, name=account_id, created_at=utcnow()))
        return account_id
    return job


def _account_ids(db) -> set[str]:
    with db.read() as s:
        return set(s.execute(select(ACCOUNTS.c.id)).scalars())


class _Gate:
    """A first job that blocks the writer thread until released, so later jobs queue into one batch."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, session) -> str:
        self.entered.set()
        assert self.release.wait(10)
        return "gate"


def _one_batch(writer: BatchWriter, jobs, barriers=None):
    gate = _Gate()
    first = writer.submit(gate)
    assert gate.entered.wait(10)
    futures = [writer.submit(job, barrier=(barriers[i] if barriers else None)) for i, job in enumerate(jobs)]
    gate.release.set()
    wait([first, *futures], timeout=20)
    return futures


def test_a_failing_job_is_rolled_back_alone(db) -> None:
    writer = BatchWriter(db)
    try:
        def failing(session):
            _add_account("acct_bad")(session)
            raise RuntimeError("no")

        futures = _one_batch(writer, [_add_account("acct_a"), failing, _add_account("acct_b")])
        assert futures[0].result() == "acct_a" and futures[2].result() == "acct_b"
        with pytest.raises(RuntimeError):
            futures[1].result()
    finally:
        writer.close()
    assert {"acct_a", "acct_b"} <= _account_ids(db)
    assert "acct_bad" not in _account_ids(db)


def test_each_barrier_runs_once_per_batch_before_the_transaction(db) -> None:
    calls: list[int] = []

    class Store:
        def sync(self) -> None:
            with db.read() as s:  # none of the batch's rows is written yet
                calls.append(s.execute(select(func.count()).select_from(ACCOUNTS)
                                       .where(ACCOUNTS.c.id.like("acct_b%"))).scalar_one())

    store = Store()
    writer = BatchWriter(db)
    try:
        futures = _one_batch(writer, [_add_account(f"acct_b{i}") for i in range(5)], [store.sync] * 5)
        assert [f.result() for f in futures] == [f"acct_b{i}" for i in range(5)]
    finally:
        writer.close()
    assert calls == [0]  # one call for five jobs
    assert {f"acct_b{i}" for i in range(5)} <= _account_ids(db)


def test_a_failing_barrier_fails_only_the_jobs_that_need_it(db) -> None:
    def broken_sync() -> None:
        raise OSError("disk gone")

    writer = BatchWriter(db)
    try:
        futures = _one_batch(writer, [_add_account("acct_c1"), _add_account("acct_c2"), _add_account("acct_c3")],
                             [broken_sync, None, broken_sync])
        for future in (futures[0], futures[2]):
            with pytest.raises(OSError, match="disk gone"):
                future.result()
        assert futures[1].result() == "acct_c2"
        # the writer goes on: the next batch commits
        assert writer.submit(_add_account("acct_c4")).result(10) == "acct_c4"
    finally:
        writer.close()
    ids = _account_ids(db)
    assert {"acct_c2", "acct_c4"} <= ids and not {"acct_c1", "acct_c3"} & ids


def test_a_deferred_insert_that_fails_fails_only_its_job(db) -> None:
    """Rows handed to defer_insert run in one executemany at the end of the batch; when that
    fails (here: a duplicate key), the batch runs again job by job and only the culprit fails."""
    with db.session() as s:
        s.connection().execute(insert(ACCOUNTS).values(id="acct_taken", name="x", created_at=utcnow()))

    def deferred(account_id: str):
        def job(session):
            defer_insert(session, insert(ACCOUNTS), [dict(id=account_id, name=account_id, created_at=utcnow())])
            return account_id
        return job

    writer = BatchWriter(db)
    try:
        futures = _one_batch(writer, [deferred("acct_d1"), deferred("acct_taken"), deferred("acct_d2")])
        assert futures[0].result() == "acct_d1" and futures[2].result() == "acct_d2"
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            futures[1].result()
    finally:
        writer.close()
    assert {"acct_d1", "acct_d2", "acct_taken"} <= _account_ids(db)


def test_defer_insert_outside_a_writer_runs_at_once(db) -> None:
    with db.session() as s:
        defer_insert(s, insert(ACCOUNTS), [dict(id="acct_now", name="now", created_at=utcnow())])
        assert s.connection().execute(select(ACCOUNTS.c.id).where(ACCOUNTS.c.id == "acct_now")).scalar_one()


def test_defer_prepare_runs_once_per_batch_before_the_inserts_and_a_failure_stays_with_its_job(db) -> None:
    """defer_prepare hands the items of every job of a batch to ONE call, before the deferred
    inserts (which see what it filled in). When it raises, the batch runs again job by job:
    each job's prepare then runs alone, and only the job whose item made it fail fails."""
    calls: list[list[str]] = []

    def prepare(session, items: list[dict]) -> None:
        calls.append([row["id"] for row in items])
        if any(row["id"] == "acct_bad" for row in items):
            raise ValueError("refused by prepare")
        for row in items:
            row["name"] = f"named by prepare ({len(items)} in the call)"

    def job(account_id: str):
        def run(session):
            row = dict(id=account_id, name=None, created_at=utcnow())
            defer_prepare(session, prepare, row)
            defer_insert(session, insert(ACCOUNTS), [row])
            return account_id
        return run

    writer = BatchWriter(db)
    try:
        futures = _one_batch(writer, [job("acct_p1"), job("acct_p2")])
        assert [f.result(10) for f in futures] == ["acct_p1", "acct_p2"]
        assert calls == [["acct_p1", "acct_p2"]]
        calls.clear()
        futures = _one_batch(writer, [job("acct_p3"), job("acct_bad"), job("acct_p4")])
        assert futures[0].result(10) == "acct_p3" and futures[2].result(10) == "acct_p4"
        with pytest.raises(ValueError, match="refused by prepare"):
            futures[1].result(10)
        assert calls == [["acct_p3", "acct_bad", "acct_p4"], ["acct_p3"], ["acct_bad"], ["acct_p4"]]
    finally:
        writer.close()
    with db.read() as s:
        names = dict(s.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.name).where(ACCOUNTS.c.id.like("acct_p%"))).all())
    assert names == {"acct_p1": "named by prepare (2 in the call)", "acct_p2": "named by prepare (2 in the call)",
                     "acct_p3": "named by prepare (1 in the call)", "acct_p4": "named by prepare (1 in the call)"}
    assert "acct_bad" not in _account_ids(db)
