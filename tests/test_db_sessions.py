"""store.db.Database sessions: durable by default, and the non-durable kind for delivery bookkeeping
(PostgreSQL ``synchronous_commit``, SQLite ``synchronous``), on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

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
        assert s.connection().connection.dbapi_connection is first  # the pooled connection, reused
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
