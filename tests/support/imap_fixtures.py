"""pytest fixtures for the IMAP tests (import them into a test module with ``from … import *``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import pytest

from store.blobs import LocalBlobStore
from store.db import Database
from store.migrate import upgrade
from tests.support.imap import FORWARD, MULTIPART, PLAIN, ImapHarness, Transcript, sample, unique_domain

FIXED_DATE = datetime(2026, 2, 5, 12, 30, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def imap(tmp_path_factory, redis_server) -> Iterator[ImapHarness]:
    """One IMAP window per test module on SQLite + local blobs + our Redis."""
    tmp = tmp_path_factory.mktemp("imap")
    db = Database(f"sqlite:///{tmp / 'mailkite.db'}")
    upgrade(db)
    with ImapHarness(db, LocalBlobStore(tmp / "blobs"), redis_server.url, tmp) as harness:
        yield harness
    db.dispose()


class Mailbox:
    """A fresh verified domain with PLAIN, MULTIPART and FORWARD delivered to bob@ (UIDs 1-3), a
    domain-scoped password, and a way to open logged-in transcripts."""

    def __init__(self, imap: ImapHarness) -> None:
        self.imap = imap
        self.domain = unique_domain()
        imap.domain(self.domain)
        for template in (PLAIN, MULTIPART, FORWARD):
            imap.deliver(sample(template, self.domain), [f"bob@{self.domain}"])
        imap.set_received(self.domain, FIXED_DATE)
        self.password = imap.password(self.domain)
        self.opened: list[Transcript] = []

    def connect(self, *, login: bool = True, select: str | None = None) -> Transcript:
        t = Transcript(self.imap.port, self.imap.cert)
        self.opened.append(t)
        if login:
            assert b"L1 OK" in t.login(self.password)
        if select:
            assert b"OK [READ-WRITE]" in t.cmd(b"S1 SELECT " + select.encode())
        return t

    def close(self) -> None:
        for t in self.opened:
            t.close()


@pytest.fixture
def mailbox(imap) -> Iterator[Mailbox]:
    mb = Mailbox(imap)
    yield mb
    mb.close()
