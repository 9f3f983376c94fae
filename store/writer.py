"""Group commit: one writer thread that commits the jobs submitted to it in batches.

Ingest transactions arrive from many SMTP sessions at once. Each taking the database's write lock
on its own (SQLite: the whole file; PostgreSQL: a commit fsync) makes them queue behind each other
with the lock held during seconds of Python work under load. The writer instead takes every job
waiting (up to ``max_batch``), runs them all in ONE transaction and commits once.

Fast path: the jobs run one after the other with no savepoint between them, and the rows they
hand to :func:`defer_insert` are written with one multi-row ``executemany`` per statement just
before the commit, on PostgreSQL all in one pipeline (bench/ingest.py: per-statement overhead was
most of the writer's time, and under load each round trip to PostgreSQL cost 2-3 ms). Work
that needs a statement per job but can be done for many at once (allocating IMAP UIDs, linking
threads) goes through :func:`defer_prepare`: it runs once for the whole batch, before the inserts. If
anything fails — a job, the deferred inserts, the commit — the transaction is rolled back and the
batch runs again the careful way: each job in its own SAVEPOINT with its deferred rows written
inside it, so a job that raises is rolled back alone and gets its exception; a failed commit
then fails every job of the batch (nothing of it was stored). Jobs must therefore be safe to run
twice: everything they do is in the transaction.

A job may name a *barrier*: a callable that must succeed before its rows are written (the ingest
path passes the blob store's ``sync``: the blobs were written before the job was submitted, so
syncing once per batch makes every raw message the batch's rows point to durable first). Each
distinct barrier of the batch runs once, before the transaction opens; the jobs whose barrier
raised get its exception and are not run.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

from prometheus_client import Histogram
from sqlalchemy import Executable
from sqlalchemy.orm import Session

from store.db import Database, pipelined

log = logging.getLogger("mailkite.store.writer")

T = TypeVar("T")
_STOP = object()
_Item = tuple[Callable[[Session], object], Future, Callable[[], None] | None]
_DEFERRED = "mailkite.deferred"  # Session.info key: the batch's _Deferred


class _Deferred:
    """What the jobs of a batch left for its end: prepare steps and inserts, each in first-use order."""

    __slots__ = ("prepares", "inserts")

    def __init__(self) -> None:
        self.prepares: dict[Callable[[Session, list], None], list] = {}
        self.inserts: dict[Executable, list[dict]] = {}

    def clear(self) -> None:
        self.prepares.clear()
        self.inserts.clear()


def defer_prepare(s: Session, prepare: Callable[[Session, list[T]], None], item: T) -> None:
    """Have ``prepare(session, items)`` run once at the end of the writer's batch with the
    ``item`` of every job that deferred to it (in submission order), before the deferred inserts;
    it may fill in the row dicts those inserts will write. Outside a :class:`BatchWriter` session
    it runs at once with ``[item]``."""
    pending: _Deferred | None = s.info.get(_DEFERRED)
    if pending is None:
        prepare(s, [item])
    else:
        pending.prepares.setdefault(prepare, []).append(item)


def defer_insert(s: Session, statement: Executable, rows: list[dict]) -> None:
    """Have ``statement`` (an INSERT) run with ``rows`` at the end of the writer's batch, in one
    ``executemany`` with the other jobs' rows; statements run in the order first deferred, so
    parents deferred before children keep foreign keys satisfied. Outside a :class:`BatchWriter`
    session the statement runs at once. Code that updates rows a deferred insert may hold must
    call :func:`flush_deferred` first.

    No result is read: ``statement`` must return no rows, so an INSERT into a table with generated
    keys is passed ``.inline()`` (no implicit ``RETURNING``). On PostgreSQL the batch's deferred
    inserts go out in one psycopg pipeline, one round trip for all of them; an error in one of
    them is raised when the pipeline ends, as psycopg's exception."""
    pending: _Deferred | None = s.info.get(_DEFERRED)
    if pending is None:
        s.connection().execute(statement, rows)
    elif rows:
        pending.inserts.setdefault(statement, []).extend(rows)


def flush_deferred(s: Session) -> None:
    """Run the deferred prepare steps, then the deferred inserts, of ``s`` now (see
    :func:`defer_prepare`, :func:`defer_insert`)."""
    pending: _Deferred | None = s.info.get(_DEFERRED)
    if pending is None:
        return
    while pending.prepares:
        prepare, items = next(iter(pending.prepares.items()))
        del pending.prepares[prepare]
        prepare(s, items)
    if pending.inserts:
        conn = s.connection()
        with pipelined(conn):
            for statement, rows in list(pending.inserts.items()):
                conn.execute(statement, rows)
        pending.inserts.clear()


BATCH_SIZE = Histogram("mailkite_db_write_batch_size", "Jobs committed together by the group-commit writer",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
BATCH_SECONDS = Histogram("mailkite_db_write_batch_seconds", "Time to run and commit one batch",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
BARRIER_SECONDS = Histogram("mailkite_db_write_barrier_seconds",
                            "Time a batch waited for its barriers (the blob store's sync) before its transaction",
                            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))


class BatchWriter:
    """``submit(job)`` → a :class:`concurrent.futures.Future` of ``job(session)``'s result, resolved
    once the batch holding it is committed (or with the exception that stopped it)."""

    def __init__(self, db: Database, *, max_batch: int = 64, name: str = "db-writer") -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[Session], T], *, barrier: Callable[[], None] | None = None) -> Future[T]:
        """Queue ``job``; ``barrier`` (optional) runs, once per batch, before the batch's transaction
        opens (see the module docstring)."""
        future: Future[T] = Future()
        self._queue.put((job, future, barrier))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Item]) -> None:
        BATCH_SIZE.observe(len(batch))
        with BATCH_SECONDS.time():
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Item]) -> None:
        batch = [item for item in batch if item[1].set_running_or_notify_cancel()]
        batch = self._pass_barriers(batch)
        if not batch:
            return
        try:
            with self.db.session() as s:
                s.info[_DEFERRED] = _Deferred()
                results = [job(s) for job, _, _ in batch]
                flush_deferred(s)
        except Exception as exc:  # noqa: BLE001 - retried job by job, or handed to the one job
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            log.info("writer.batch_retried_one_by_one", extra={"kv": {"jobs": len(batch), "error": str(exc)[:200]}})
            self._commit_one_by_one(batch)
            return
        for (_, future, _), result in zip(batch, results):
            future.set_result(result)

    def _commit_one_by_one(self, batch: list[_Item]) -> None:
        """Each job in its own SAVEPOINT (its deferred rows written inside it), one commit."""
        outcomes: list[tuple[Future, object, BaseException | None]] = []
        try:
            with self.db.session() as s:
                s.info[_DEFERRED] = _Deferred()
                for job, future, _ in batch:
                    try:
                        with s.begin_nested():
                            result = job(s)
                            flush_deferred(s)
                        outcomes.append((future, result, None))
                    except Exception as exc:  # noqa: BLE001 - handed to the job's submitter
                        s.info[_DEFERRED].clear()
                        outcomes.append((future, None, exc))
        except Exception as exc:  # noqa: BLE001 - the commit failed: nothing of the batch is stored
            log.warning("writer.batch_failed", extra={"kv": {"jobs": len(batch), "error": str(exc)[:200]}})
            for _, future, _ in batch:
                future.set_exception(exc)
            return
        for future, result, exc in outcomes:
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)

    @staticmethod
    def _pass_barriers(batch: list[_Item]) -> list[_Item]:
        """Run each distinct barrier once, before the transaction opens (so the database's write
        lock is not held during a file-system sync); the jobs whose barrier raised get its
        exception and are left out of the batch."""
        failed: dict[Callable[[], None], BaseException] = {}
        barriers = dict.fromkeys(b for _, _, b in batch if b is not None)  # bound methods of one object compare equal
        if not barriers:
            return batch
        with BARRIER_SECONDS.time():
            for barrier in barriers:
                try:
                    barrier()
                except Exception as exc:  # noqa: BLE001 - handed to the jobs that needed it
                    log.warning("writer.barrier_failed", extra={"kv": {"error": str(exc)[:200]}})
                    failed[barrier] = exc
        if not failed:
            return batch
        kept = []
        for item in batch:
            if item[2] in failed:
                item[1].set_exception(failed[item[2]])
            else:
                kept.append(item)
        return kept
