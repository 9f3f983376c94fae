"""Shared fixtures: real Redis, PostgreSQL, S3 (moto server), webhook receivers, mailkite processes.

- ``db``: a migrated :class:`store.db.Database`, once on SQLite and once on PostgreSQL.
- ``blobs``: a blob store, once a local folder and once S3 over HTTP.
- ``redis_server`` / ``redis_url``: a redis-server of our own on a free port (flushed per test).
- ``receiver``: an HTTP webhook receiver; ``instance``: a configured (not yet started) mailkite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text

from store.blobs import BlobStore, LocalBlobStore, S3BlobStore
from store.db import Database
from store.migrate import upgrade
from store.models import Base
from tests.support.instance import MailkiteInstance
from tests.support.servers import PostgresDatabase, RedisProcess, S3Server, WebhookReceiver, s3_env

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "eml"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    if redis_server.proc is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    s3_env()
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PostgresDatabase]:
    pg = PostgresDatabase()
    pg.create()
    db = Database(pg.url)
    upgrade(db)
    db.dispose()
    yield pg
    pg.drop()


def _truncate_all(db: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A database URL with the newest schema and no rows."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mailkite.db'}"
        db = Database(url)
        upgrade(db)
        db.dispose()
        return url
    pg: PostgresDatabase = request.getfixturevalue("pg_database")
    db = Database(pg.url)
    _truncate_all(db)
    db.dispose()
    return pg.url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture(params=["local", "s3"])
def blob_url(request, tmp_path) -> tuple[str, str | None]:
    """(``MAILKITE_BLOB_URL``, ``MAILKITE_S3_ENDPOINT_URL``) for a fresh, empty store."""
    if request.param == "local":
        return (tmp_path / "blobs").as_uri(), None
    s3: S3Server = request.getfixturevalue("s3_server")
    return f"s3://{s3.create_bucket()}/mail", s3.endpoint_url


@pytest.fixture
def blobs(blob_url) -> BlobStore:
    url, endpoint = blob_url
    if endpoint is None:
        return LocalBlobStore(Path(url.removeprefix("file://")))
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return S3BlobStore(bucket, prefix, endpoint_url=endpoint)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def instance(tmp_path, redis_url) -> Iterator[MailkiteInstance]:
    """A mailkite on SQLite + local blobs + our Redis; start roles with ``instance.start(...)``."""
    inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
    yield inst
    inst.stop_all()


# Scanners (tests/test_scan_*.py): real clamd, rspamd and spamd from Debian's packages, started once
# per session on free loopback ports (tests/support/clamd.py, rspamd.py, spamd.py). Tests that stop
# or pause one start or resume it again before they end.
def _scanner_daemon(cls):
    server = cls()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def clamd_server():
    from tests.support.clamd import ClamdProcess

    yield from _scanner_daemon(ClamdProcess)


@pytest.fixture(scope="session")
def rspamd_server():
    from tests.support.rspamd import RspamdProcess

    yield from _scanner_daemon(RspamdProcess)


@pytest.fixture(scope="session")
def spamd_server():
    from tests.support.spamd import SpamdProcess

    yield from _scanner_daemon(SpamdProcess)
