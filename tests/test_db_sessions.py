"""store.db on real SQLite and PostgreSQL: sessions, durable by default and the non-durable kind for
delivery bookkeeping (PostgreSQL ``synchronous_commit``, SQLite ``synchronous``); ``one_of`` lists;
``pipelined`` blocks."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from store.db import one_of, pipelined

from store.models import Account


def _sync_setting(session) -> str:
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        return {0: "off", 1: "normal", 2: "full", 3: "extra"}[conn.exec_driver_sql("PRAGMA synchronous").scalar()]
    return conn.exec_driver_sql("SHOW synchronous_commit").scalar()


def test_sessions_are_durable_unless_asked(db):
    with db.session() as s:
        durable = _sync_setting(s)
        first = s.connection().connection.dbapi_connection
    assert durable in ("full", "on")
    with db.session(durable=False) as s:
        assert _sync_setting(s) in ("normal", "off")
        relaxed = s.connection().connection.dbapi_connection
        # SQLite: the pooled connection, switched for the transaction; PostgreSQL: a pool of its own
        assert (relaxed is first) == (db.engine.dialect.name == "sqlite")
        s.add(Account(id="acc_relaxed", name="relaxed"))
    with db.session() as s:  # the same connection again: the setting did not stay with it
        assert s.connection().connection.dbapi_connection is first
        assert _sync_setting(s) == durable
        assert s.scalar(select(Account.name).where(Account.id == "acc_relaxed")) == "relaxed"  # committed


def test_a_non_durable_session_that_raises_rolls_back_and_resets(db):
    with pytest.raises(RuntimeError):
        with db.session(durable=False) as s:
            s.add(Account(id="acc_rolled_back", name="x"))
            s.flush()
            raise RuntimeError("boom")
    with db.session() as s:
        assert s.scalar(select(Account.id).where(Account.id == "acc_rolled_back")) is None
        assert _sync_setting(s) in ("full", "on")


def test_one_of_selects_the_listed_rows_whatever_the_list_length(db):
    """``one_of`` (PostgreSQL ``= ANY(array)``, else expanding ``IN``): the same rows as Python's
    ``in``, for empty, short, long and repeated lists, in one prebuilt statement per dialect."""
    table = Account.__table__
    ids = [f"acc_list_{i:04d}" for i in range(1200)]
    with db.session() as s:
        s.connection().execute(insert(table), [{"id": i, "name": i} for i in ids])
    among = one_of(table.c.id, "b_ids")
    assert set(among) == {"postgresql", "sqlite"}
    statement = {dialect: select(table.c.id).where(expr) for dialect, expr in among.items()}
    with db.read() as s:
        conn = s.connection()
        for wanted in ([], ids[:1], ids[3:40], ids[::2], ids[:5] * 3, ["acc_list_missing", ids[7]]):
            got = set(conn.execute(statement[conn.dialect.name], {"b_ids": wanted}).scalars())
            assert got == set(wanted) & set(ids)


def test_pipelined_statements_are_written_and_an_error_surfaces_at_the_end(db):
    """``pipelined``: on PostgreSQL the block's statements go out in one psycopg pipeline (libpq
    reports pipeline mode inside it), elsewhere they run one by one; either way they are all
    written, and a failing one raises by the end of the block and rolls the transaction back."""
    table = Account.__table__
    with db.session() as s:
        conn = s.connection()
        raw = conn.connection.driver_connection
        with pipelined(conn):
            if conn.dialect.name == "postgresql":
                from psycopg import pq

                assert raw.pgconn.pipeline_status == pq.PipelineStatus.ON
            conn.execute(insert(table), [{"id": "acc_pipe_1", "name": "one"}, {"id": "acc_pipe_2", "name": "two"}])
            conn.execute(insert(table).inline(), {"id": "acc_pipe_3", "name": "three"})
    with db.read() as s:
        assert set(s.scalars(select(table.c.id).where(table.c.id.like("acc_pipe_%")))) == {
            "acc_pipe_1", "acc_pipe_2", "acc_pipe_3"}
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with db.session() as s:
            conn = s.connection()
            with pipelined(conn):
                conn.execute(insert(table).inline(), {"id": "acc_pipe_4", "name": "four"})
                conn.execute(insert(table).inline(), {"id": "acc_pipe_1", "name": "again"})  # taken
    with db.read() as s:
        assert s.scalar(select(table.c.id).where(table.c.id == "acc_pipe_4")) is None  # rolled back


def test_a_connection_idle_in_the_pool_is_pinged_and_replaced_when_its_server_side_is_gone(db, monkeypatch):
    """PostgreSQL: a pooled connection idle for ``PING_AFTER_IDLE_S`` is pinged before use, and one
    whose backend went away (a server restart, an idle timeout) is replaced without an error. One
    back from the pool sooner is not pinged (no round trip per transaction under load): the
    transaction that finds it dead fails, and the next one gets a new connection."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL connections")
    import psycopg
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from store import db as store_db
    from store.db import Database

    own = Database(db.url, pool_size=1)  # one connection, reused by every session below
    admin = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def backend_pid() -> int:
        with own.session() as s:
            return s.scalar(text("SELECT pg_backend_pid()"))

    def kill(pid: int) -> None:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("SELECT pg_terminate_backend(%s)", (pid,))

    try:
        first = backend_pid()
        assert backend_pid() == first  # pooled
        kill(first)
        monkeypatch.setattr(store_db, "PING_AFTER_IDLE_S", 0.0)  # every checkout counts as idle
        second = backend_pid()  # pinged, found dead, replaced: no error
        assert second != first
        monkeypatch.setattr(store_db, "PING_AFTER_IDLE_S", 3600.0)  # never idle long enough
        kill(second)
        with pytest.raises(OperationalError):
            backend_pid()  # not pinged: this transaction finds the connection dead
        assert backend_pid() not in (first, second)  # the pool reconnected
    finally:
        own.dispose()
