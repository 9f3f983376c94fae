"""Database engine and sessions (SQLAlchemy 2): SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with ``synchronous=FULL``: every commit fsyncs the WAL, so a committed
ingest transaction survives a power loss, as its 250 promises (DESIGN.md "Invariants"; with
``NORMAL`` only a process crash). Ingest commits in groups (store/writer.py), so that is one fsync
per batch of messages, not per message. Writers take the write lock at BEGIN with a fine-grained retry, so the MX, worker and
web processes can share one file without SQLite's coarse busy sleeps.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import orjson
from sqlalchemy import ARRAY, ColumnElement, Connection, any_, bindparam, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
READONLY_OPTION = "mailkite_readonly"
RELAXED_OPTION = "mailkite_not_durable"  # Database.session(durable=False)
PING_AFTER_IDLE_S = 2.0  # PostgreSQL: a pooled connection idle this long is pinged before use
_CHECKED_IN_AT = "mailkite_checked_in_at"  # pool ConnectionRecord.info key (time.monotonic())


def make_engine(url: str, *, pool_size: int = 10, durable: bool = True) -> Engine:
    """Create an :class:`Engine` for ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``).

    For SQLite the parent directory is created and each connection is switched to WAL mode.
    ``durable=False`` (PostgreSQL only): every connection has ``synchronous_commit = off``, for
    :meth:`Database.session` with ``durable=False``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                               json_serializer=json_text, json_deserializer=orjson.loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # Let SQLAlchemy issue BEGIN itself so transactions really start at the first statement.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # WAL fsync at each commit (see the module docstring)
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "checkin")
        def _sqlite_durable_again(dbapi_conn, record):  # pragma: no cover - trivial
            if record.info.pop(RELAXED_OPTION, False) and dbapi_conn is not None:
                dbapi_conn.execute("PRAGMA synchronous=FULL")  # after a Database.session(durable=False)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            # Writers take the lock up front (BEGIN IMMEDIATE): a deferred transaction that later
            # writes can fail at once with SQLITE_BUSY_SNAPSHOT instead of waiting its turn.
            options = conn.get_execution_options()
            if options.get(READONLY_OPTION, False):
                conn.exec_driver_sql("BEGIN")
                return
            if options.get(RELAXED_OPTION, False):
                # Database.session(durable=False); SQLite refuses this inside a transaction
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                conn.connection.info[RELAXED_OPTION] = True  # put back at check-in
            _begin_immediate(conn.connection.dbapi_connection)

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                           connect_args={} if durable else {"options": "-c synchronous_commit=off"},
                           json_serializer=json_text, json_deserializer=orjson.loads)

    # Pessimistic disconnect handling (SQLAlchemy "Dealing with Disconnects"), only where it pays:
    # a connection back from the pool after PING_AFTER_IDLE_S or more is pinged first, and one
    # that fails the ping is replaced (DisconnectionError: the pool reconnects). pool_pre_ping
    # pings at every checkout, a round trip per transaction; under load, when connections go in
    # and out of the pool all the time, that round trip cost 2-3 ms each (bench/ingest.py: the
    # writer's batch 20.4/18.5 -> 15.4/12.4 ms without it). A server restart while connections
    # were busy fails the transaction that finds it out; the pool then reconnects.
    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_conn, record):  # pragma: no cover - trivial
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_after_idle(dbapi_conn, record, _proxy):
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure: this connection is not usable
            raise DisconnectionError(f"connection failed its ping after being idle: {exc}") from exc

    return engine


def one_of(column: ColumnElement, name: str) -> dict[str, ColumnElement[bool]]:
    """``column IN (the list bound as name)``, per dialect name: on PostgreSQL ``column = ANY(:name)``
    with the list sent as one array parameter, elsewhere SQLAlchemy's expanding ``IN``.

    Expanding ``IN`` renders one SQL text per list length; on PostgreSQL each text is a statement
    of its own to psycopg's prepared-statement cache and to the planner, and lists whose lengths
    vary call after call (a batch's msg-ids, a job's events) measured 5-18 ms a query against
    0.8 ms for the one ``ANY`` text (20,000 links, lists of 3-40 ids)."""
    return {"postgresql": column == any_(bindparam(name, type_=ARRAY(column.type))),
            "sqlite": column.in_(bindparam(name, expanding=True))}


def pipelined(conn: Connection) -> AbstractContextManager:
    """On PostgreSQL, psycopg's pipeline mode for the statements run inside the block: they are
    sent without waiting for each result and synchronised once at the end (psycopg "Pipeline
    mode"); elsewhere nothing. Only for statements whose results are not read (no ``RETURNING``,
    no row count): SQLAlchemy sees no result inside the block. An error is raised when the block
    ends, as psycopg's exception. Under load each round trip from the MX's writer thread to
    PostgreSQL cost 2-3 ms (bench/ingest.py)."""
    if conn.dialect.name != "postgresql":
        return nullcontext()
    return conn.connection.driver_connection.pipeline()


def json_text(value: object) -> str:
    """The text of a JSON column value: orjson (the ingest path writes several JSON columns per
    message; the stdlib encoder was a visible part of the MX's writer), the stdlib where orjson
    refuses (lone surrogates, integers beyond 64 bits). Raises ``TypeError`` for non-JSON values."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value)


def _begin_immediate(dbapi_conn: sqlite3.Connection) -> None:
    """Take SQLite's write lock, retrying every few hundred microseconds while another writer holds
    it. SQLite's own busy handler sleeps 25–100 ms between tries once contended, which turned a
    3 ms transaction into a 500 ms one under load (several MX threads, workers and the relay all
    write); the lock is only ever held for one short transaction, so polling finely is cheap.
    Raises ``sqlite3.OperationalError`` after :data:`SQLITE_BUSY_TIMEOUT_MS`."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.0002
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 1.5, 0.004)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def is_sqlite(engine: Engine) -> bool:
    """True when ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


class Database:
    """An engine plus a session factory; the one handle components receive for the metadata DB."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READONLY_OPTION: True}), expire_on_commit=False
        )
        # Database.session(durable=False): on SQLite the same connections, switched by make_engine's
        # hooks around the transaction; on PostgreSQL a pool of connections opened with
        # synchronous_commit off (a SET LOCAL per transaction was one more round trip each).
        self._relaxed_engine = None if is_sqlite(self.engine) else make_engine(url, pool_size=pool_size, durable=False)
        self._relaxed = sessionmaker(self._relaxed_engine or self.engine.execution_options(**{RELAXED_OPTION: True}),
                                     expire_on_commit=False)

    @contextmanager
    def session(self, *, durable: bool = True) -> Iterator[Session]:
        """A read-write session in one transaction: committed on success, rolled back on error.

        ``durable=False`` is for bookkeeping whose loss in a crash of the machine only repeats work
        (a delivery's lease and its attempt records: the event goes out again, with the same
        ``webhook-id``): the commit does not wait for the log to reach the disk (PostgreSQL: a
        connection from a pool opened with ``synchronous_commit = off``; SQLite: ``synchronous =
        NORMAL`` until the connection goes back to the pool). Both databases keep such commits
        atomic and in order, so a later durable commit (an ingest) makes every earlier one durable
        too. Never for a transaction behind a promise to the outside (an SMTP ``250``)."""
        with (self._sessions if durable else self._relaxed)() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (SQLite: a deferred transaction that never blocks writers)."""
        with self._readers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close pooled connections (call before forking and at shutdown)."""
        self.engine.dispose()
        if self._relaxed_engine is not None:
            self._relaxed_engine.dispose()
