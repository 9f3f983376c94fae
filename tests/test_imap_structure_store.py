"""IMAP structures at rest: written in the ingest transaction, read back in bulk (SQLite + PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import func, select

from parser.imap_structure import compute
from store.domains import add_domain
from store.imap_structures import QUERY_CHUNK, Span, structures_for
from store.messages import NewTransaction, Recipient, record_transaction
from store.models import MessageStatus, MessageStructure, Retention

RAW = (b"From: Ann <ann@example.org>\r\nTo: team@example.com\r\nSubject: hello\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
       b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--XX--\r\n")


def _tx(txn: str, domain, *, raw: bytes = RAW, retention: Retention = Retention.STORED,
        status: MessageStatus = MessageStatus.ACCEPTED) -> NewTransaction:
    return NewTransaction(
        transaction_id=txn, recipients=[Recipient(f"team@{domain.name}", domain, (f"team@{domain.name}",))],
        mail_from="ann@example.org", client_ip="127.0.0.1", helo="client", tls=False,
        received_at=datetime.now(timezone.utc), size=len(raw), sha256=hashlib.sha256(raw).hexdigest(),
        raw_key=None, parsed_key=None, retention=retention, status=status, create_events=False,
        imap_structure=compute(raw))


def test_structure_is_stored_with_the_message_and_read_back(db):
    domain = add_domain(db, "example.com")
    record_transaction(db, _tx("txn_a", domain))
    got = structures_for(db, ["txn_a", "txn_missing"])
    assert set(got) == {"txn_a"}
    row, expected = got["txn_a"], compute(RAW)
    assert row.envelope == expected.envelope
    assert row.bodystructure == expected.bodystructure
    assert row.body == expected.body
    assert row.header_block == expected.header_block
    assert row.size == len(RAW)
    assert row.parts["2"] == Span(*expected.parts["2"].__dict__.values())
    span = row.parts["1"]
    assert RAW[span.body_start:span.end] == b"hi"
    assert RAW[span.header_start:span.body_start] == b"Content-Type: text/plain\r\n\r\n"


def test_zero_retention_and_deferred_transactions_store_no_structure(db):
    zr = add_domain(db, "zr.example.com", zero_retention=True)
    record_transaction(db, _tx("txn_zr", zr, retention=Retention.ZERO_RETENTION, status=MessageStatus.DEFERRED))
    assert structures_for(db, ["txn_zr"]) == {}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(MessageStructure)) == 0


def test_bulk_read_spans_several_queries(db):
    domain = add_domain(db, "example.com")
    n = QUERY_CHUNK + 7
    raws = [RAW.replace(b"hello", b"hello %d" % i) for i in range(n)]
    with db.session() as s:
        from store.messages import record_transaction_in
        for i, raw in enumerate(raws):
            record_transaction_in(s, _tx(f"txn_{i:05d}", domain, raw=raw))
    ids = [f"txn_{i:05d}" for i in range(n)]
    got = structures_for(db, ids + ids[:3])  # duplicates are harmless
    assert len(got) == n
    assert got["txn_01005"].envelope == compute(raws[1005]).envelope
    assert b'"hello 1005"' in got["txn_01005"].envelope
