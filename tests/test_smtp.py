"""The MX listener over real sockets: RFC 5321 conversation rules, limits, hostile clients, and
"250 only once durable" — against a real database (SQLite and PostgreSQL) and blob store."""

from __future__ import annotations

import smtplib
import time
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select, text

from store.domains import add_domain
from store.models import Event, Message
from tests.support.mx import MXThread, RawSMTP


@pytest.fixture
def mx(db, blobs):
    add_domain(db, "example.com")
    server = MXThread(db, blobs, max_message_bytes=200_000, max_recipients=3).start()
    yield server
    server.stop()


def _message(subject: str = "Hello", body: str = "Hi there\n") -> bytes:
    m = EmailMessage()
    m["From"] = "Alice <alice@sender.test>"
    m["To"] = "support@example.com"
    m["Subject"] = subject
    m["Message-ID"] = f"<{time.time_ns()}@sender.test>"
    m.set_content(body)
    return m.as_bytes(policy=policy.SMTP)  # CRLF line endings, as on the wire


def _messages(db) -> list[Message]:
    with db.read() as s:
        return list(s.scalars(select(Message).order_by(Message.received_at)))


def test_ehlo_advertises_the_extensions(mx):
    with smtplib.SMTP("127.0.0.1", mx.port) as c:
        code, _ = c.ehlo("client.test")
        assert code == 250
        for ext in ("size", "8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes", "starttls"):
            assert c.has_extn(ext), ext
        assert c.esmtp_features["size"] == "200000"
        assert not c.has_extn("auth")  # an MX offers no AUTH
        c.starttls(context=mx.client_tls)
        c.ehlo("client.test")
        assert not c.has_extn("auth")
        for mechanism in ("PLAIN AHVzZXIAcGFzcw==", "LOGIN"):  # no mechanism runs, no password is judged
            assert c.docmd("AUTH", mechanism) == (502, b"5.5.1 AUTH not available: this server only receives "
                                                       b"mail for its domains")
        code, text = c.docmd("HELP")
        assert code == 250 and b"MAIL" in text and b"AUTH" not in text


def test_accepted_message_is_durable_when_250_arrives(mx, db, blobs):
    raw = _message()
    with smtplib.SMTP("127.0.0.1", mx.port) as c:
        c.ehlo()
        c.mail("alice@sender.test")
        c.rcpt("support@example.com")
        code, reply = c.data(raw)
    assert code == 250 and reply.startswith(b"2.0.0 Ok: queued as msg_")
    msg_id = reply.decode().rsplit(" ", 1)[1]
    # No waiting: the reply itself means the rows and the blob are there.
    (row,) = _messages(db)
    assert row.id == msg_id and row.inbox == "support@example.com" and row.mail_from == "alice@sender.test"
    assert row.client_ip == "127.0.0.1" and row.tls is False and row.subject == "Hello"
    assert blobs.get(row.raw_key) == raw  # byte for byte: the raw bytes are the source of truth
    assert row.imap_uid == 1


def test_catch_all_accepts_any_local_part_and_one_row_per_recipient(mx, db):
    with smtplib.SMTP("127.0.0.1", mx.port) as c:
        refused = c.sendmail("a@sender.test", ["sales@example.com", "Anything.Else+tag@EXAMPLE.COM"], _message())
    assert refused == {}
    rows = _messages(db)
    assert sorted(r.inbox for r in rows) == ["Anything.Else+tag@example.com", "sales@example.com"]
    assert len({r.transaction_id for r in rows}) == 1 and len({r.raw_key for r in rows}) == 1
    assert sorted(r.imap_uid for r in rows) == [1, 2]


def test_relaying_is_refused_with_550_571(mx, db):
    c = RawSMTP(mx.port)
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    code, lines = c.cmd("RCPT TO:<victim@elsewhere.test>")
    assert code == 550 and lines[0].startswith("5.7.1 Relaying denied")
    code, lines = c.cmd("RCPT TO:<postmaster>")  # no domain part at all
    assert code in (501, 550, 553)
    code, lines = c.cmd("DATA")
    assert code == 503 and lines[0].startswith("5.5.1")
    c.close()
    assert _messages(db) == []


def test_too_many_recipients_gets_452_453(mx, db):
    c = RawSMTP(mx.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@sender.test>")
    for i in range(3):
        assert c.cmd(f"RCPT TO:<user{i}@example.com>")[0] == 250
    code, lines = c.cmd("RCPT TO:<user3@example.com>")
    assert code == 452 and lines[0].startswith("4.5.3")
    # The transaction goes on with the accepted three (RFC 5321 §4.5.3.1.10).
    assert c.cmd("DATA")[0] == 354
    c.send(_message() + b".\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert len(_messages(db)) == 3


def test_oversize_message_gets_552_534_and_nothing_is_stored(mx, db):
    c = RawSMTP(mx.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("MAIL FROM:<a@sender.test> SIZE=999999999")
    assert code == 552 and lines[0].startswith("5.3.4")
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<big@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    line = b"x" * 998 + b"\r\n"
    c.send(b"Subject: big\r\n\r\n" + line * 300 + b".\r\n")
    code, lines = c.reply()
    assert code == 552 and lines[0].startswith("5.3.4")
    assert c.cmd("NOOP")[0] == 250  # the session survives
    c.close()
    assert _messages(db) == []


@pytest.mark.parametrize("fake_end", [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n"])
def test_bare_lf_never_ends_data_smtp_smuggling(mx, db, blobs, fake_end):
    smuggled = (b"MAIL FROM:<ceo@bank.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nevil\r\n")
    c = RawSMTP(mx.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<support@example.com>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: first\r\n\r\nhello" + fake_end + smuggled + b".\r\n")
    code, lines = c.reply()
    assert code == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()
    rows = _messages(db)
    assert len(rows) == 1, "the smuggled second message must not exist"
    assert rows[0].inbox == "support@example.com" and rows[0].subject == "first"
    stored = blobs.get(rows[0].raw_key)
    assert b"RCPT TO:<victim@example.com>" in stored  # kept as body text of the one message


def test_garbage_commands_get_clear_errors_and_the_session_survives(mx):
    c = RawSMTP(mx.port)
    assert c.cmd("EHLO client.test")[0] == 250
    code, lines = c.cmd("XYZZY plugh")
    assert code == 500 and lines[0].startswith("5.5.2")
    code, _ = c.cmd("MAIL FROM:not-an-address<<")
    assert code in (501, 553)
    code, lines = c.cmd("RCPT TO:<a@example.com>")
    assert code == 503 and lines[0].startswith("5.5.1")  # no MAIL yet
    c.send(b"\xff\xfe\x00binary\r\n")
    assert c.reply()[0] == 500
    code, lines = c.cmd("HELO " + "a" * 2000)
    assert code == 500 and "too long" in lines[0].lower()
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_pipelined_commands_are_answered_in_order(mx, db):
    c = RawSMTP(mx.port)
    c.cmd("EHLO client.test")
    c.send(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<one@example.com>\r\nRCPT TO:<x@nope.test>\r\n"
           b"RCPT TO:<two@example.com>\r\nDATA\r\n")
    assert [c.reply()[0] for _ in range(5)] == [250, 250, 550, 250, 354]
    c.send(b"Subject: piped\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert sorted(r.inbox for r in _messages(db)) == ["one@example.com", "two@example.com"]


def test_client_disconnecting_mid_data_stores_nothing(mx, db, blobs):
    c = RawSMTP(mx.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<support@example.com>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: cut\r\n\r\nhalf a message")
    c.close()
    time.sleep(0.5)
    assert _messages(db) == []
    # A later, complete message still goes through.
    with smtplib.SMTP("127.0.0.1", mx.port) as s:
        s.sendmail("a@sender.test", ["support@example.com"], _message("after"))
    assert [r.subject for r in _messages(db)] == ["after"]


def test_starttls_and_null_sender(mx, db):
    with smtplib.SMTP("127.0.0.1", mx.port) as c:
        c.ehlo("client.test")
        c.starttls(context=mx.client_tls)
        c.ehlo("client.test")
        assert not c.has_extn("starttls")
        c.sendmail("", ["bounces@example.com"], _message("bounce"))
    (row,) = _messages(db)
    assert row.tls is True and row.mail_from == "" and row.helo == "client.test"


def test_unparseable_mime_is_still_accepted_with_parse_errors(mx, db, blobs):
    raw = (b"From: x@sender.test\r\nTo: support@example.com\r\nSubject: broken\r\n"
           b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter at all\r\n")
    with smtplib.SMTP("127.0.0.1", mx.port) as c:
        c.sendmail("x@sender.test", ["support@example.com"], raw)
    (row,) = _messages(db)
    assert row.subject == "broken" and row.parse_errors
    assert blobs.get(row.raw_key).startswith(b"From: x@sender.test")


def test_long_envelope_and_from_values_are_stored_not_deferred(mx, db):
    """RFC 5321 §4.5.3.1: no limits where a server can avoid them. A HELO over 255 characters, a
    MAIL FROM and an inbox over 320, a From address over 320 — all of which the MX accepts — once
    made PostgreSQL's insert fail, and the message got 451 on every retry (migration 0007)."""
    helo = "relay-" + ".".join(["h" * 60] * 5) + ".test"
    sender = "s" * 64 + "@" + ".".join(["b" * 60] * 5) + ".test"
    inbox = "r" * 400 + "@example.com"
    from_address = "x" * 300 + "@" + "c" * 200 + ".test"
    raw = _message().replace(b"From: Alice <alice@sender.test>", f"From: Alice <{from_address}>".encode())
    with smtplib.SMTP("127.0.0.1", mx.port) as c:
        c.ehlo(helo)
        assert c.mail(sender)[0] == 250
        assert c.rcpt(inbox)[0] == 250
        code, reply = c.data(raw)
    assert code == 250, reply
    (row,) = _messages(db)
    assert (row.helo, row.mail_from, row.inbox, row.from_address) == (helo, sender, inbox, from_address)
    assert len(helo) > 255 and min(len(sender), len(inbox), len(from_address)) > 320


def _send_expecting_451(db, blobs) -> None:
    """One message through an MX on ``blobs``; the reply must be ``451 4.3.0``."""
    server = MXThread(db, blobs).start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as err, smtplib.SMTP("127.0.0.1", server.port) as c:
            c.sendmail("a@sender.test", ["support@example.com"], _message())
        assert err.value.smtp_code == 451 and err.value.smtp_error.startswith(b"4.3.0")
    finally:
        server.stop()


def test_nul_characters_are_refused_in_commands_and_replaced_in_stored_fields(mx, db, blobs):
    """A NUL in HELO, MAIL FROM or RCPT TO is a syntax error (RFC 5321 §4.1.2); one that a header
    field carries (an encoded-word ``=00``, a DKIM tag) reaches the row as U+FFFD, on PostgreSQL
    too (its text and jsonb refuse NUL: the insert failed and the message got 451 on every retry),
    while the stored bytes stay exactly as received."""
    c = RawSMTP(mx.port)
    for command in ("EHLO bad\x00name.test", "HELO bad\x00name.test"):
        assert c.cmd(command) == (501, ["5.5.2 Syntax error: NUL character in the command"])
    assert c.cmd("EHLO client.test")[0] == 250
    # aiosmtpd's answer to a path it cannot read: 553 5.1.3 "malformed address"
    assert c.cmd("MAIL FROM:<a\x00b@sender.test>") == (553, ["5.1.3 Error: malformed address"])
    assert c.cmd("MAIL FROM:<ab@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<sup\x00port@example.com>") == (553, ["5.1.3 Error: malformed address"])
    c.close()

    raw = (_message().replace(b"Subject: Hello", b"Subject: =?utf-8?q?nul=00here?=")
           .replace(b"From: Alice <alice@sender.test>", b"From: =?utf-8?q?Al=00ice?= <alice@sender.test>")
           .replace(b"Message-ID: <", b"References: <ref\x00one@sender.test>\r\nMessage-ID: <"))
    with smtplib.SMTP("127.0.0.1", mx.port) as smtp:
        assert smtp.sendmail("alice@sender.test", ["support@example.com"], raw) == {}
    (row,) = _messages(db)
    assert (row.subject, row.from_name) == ("nul\ufffdhere", "Al\ufffdice")
    assert row.references == ["<ref\ufffdone@sender.test>"]
    assert blobs.get(row.raw_key) == raw


def test_blob_store_failure_answers_451_and_keeps_nothing(db, tmp_path):
    from store.blobs import LocalBlobStore

    add_domain(db, "example.com")
    root = tmp_path / "blobs"
    broken = LocalBlobStore(root)
    root.rmdir()
    root.write_text("a file where the folder should be")  # every put now fails with an OSError
    _send_expecting_451(db, broken)
    assert _messages(db) == []


def test_database_failure_answers_451_and_removes_the_blobs(db, blobs):
    add_domain(db, "example.com")
    # A real database error at commit time: a trigger refusing message rows.
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON messages "
                              "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(text("CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ "
                              "BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON messages "
                              "FOR EACH ROW EXECUTE FUNCTION refuse()"))
    server = MXThread(db, blobs).start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as err, smtplib.SMTP("127.0.0.1", server.port) as c:
            c.sendmail("a@sender.test", ["support@example.com"], _message())
        assert err.value.smtp_code == 451
    finally:
        server.stop()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse" + ("" if db.engine.dialect.name == "sqlite" else " ON messages")))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0
        assert s.scalar(select(func.count()).select_from(Event)) == 0
    assert blobs.keys("raw/") == [] and blobs.keys("parsed/") == []


def test_blob_sync_failure_answers_451_and_keeps_nothing(db, tmp_path):
    """The batch's one sync (syncfs) reports a write-back error: no row committed, blobs removed.
    (A disk that fails write-back cannot be had here; the store's sync raising what it would raise
    stands in for it.)"""
    from store.blobs import BlobError, LocalBlobStore

    class WriteBackFails(LocalBlobStore):
        def sync(self) -> None:
            raise BlobError("syncing: Input/output error")

    add_domain(db, "example.com")
    store = WriteBackFails(tmp_path / "blobs")
    _send_expecting_451(db, store)
    assert _messages(db) == []
    assert store.keys() == []


def test_a_cut_off_path_is_a_syntax_error_not_a_crash(mx) -> None:
    c = RawSMTP(mx.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("MAIL FROM:<")
    assert code in (501, 553) and "IndexError" not in " ".join(lines)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250  # the session goes on
    c.close()
