"""Zero-retention domains (DESIGN.md "Invariants"): delivered during the SMTP session with attachments
inline, 250 only when every endpoint answered 2xx (else 451 4.3.0), and nothing at rest but ids,
times and status codes."""

from __future__ import annotations

import base64
import hashlib
import json
import smtplib

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from store.db import Database
from store.models import DeliveryAttempt, Event, Message, OutboxEntry
from tests.conftest import SAMPLES
from tests.support.instance import MailkiteInstance
from tests.support.servers import WebhookReceiver

RAW = (SAMPLES / "attachments.eml").read_bytes()


@pytest.fixture
def zr(tmp_path, redis_url):
    made = []

    def make(*responders):
        receivers = [WebhookReceiver(responder=r).start() for r in responders]
        inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
        inst.add_domain("private.example", "--zero-retention")
        secrets = [inst.add_webhook(r.url)[1] for r in receivers]
        inst.start("mx")
        made.append((inst, receivers))
        return inst, receivers, secrets

    yield make
    for inst, receivers in made:
        inst.stop_all()
        for r in receivers:
            r.stop()


def _rows(inst: MailkiteInstance):
    db = Database(f"sqlite:///{inst.data_dir / 'mailkite.db'}")
    with db.read() as s:
        return (list(s.scalars(select(Message))), list(s.scalars(select(Event))),
                list(s.scalars(select(DeliveryAttempt))), list(s.scalars(select(OutboxEntry))))


def _stored_files(inst: MailkiteInstance) -> list[str]:
    root = inst.data_dir / "blobs"
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_delivered_in_session_with_inline_attachments_and_nothing_at_rest(zr):
    inst, (receiver,), (secret,) = zr(lambda req, n: (200, {}, 0))
    with smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
        c.ehlo("client.test")
        c.mail("billing@vendor.test")
        c.rcpt("ap@private.example")
        code, reply = c.data(RAW)
        # The webhook has arrived before the 250 did.
        assert code == 250 and len(receiver.requests) == 1
    doc = Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    data = doc["data"]
    assert data["retention"] == "zero_retention" and data["raw_url"] is None
    assert data["subject"] == "Invoice INV-2026-0042"
    expected = json.loads((SAMPLES / "attachments.json").read_text())["attachments"]
    assert [a["sha256"] for a in data["attachments"]] == [a["sha256"] for a in expected]
    for att in data["attachments"]:
        content = base64.b64decode(att["content"])
        assert hashlib.sha256(content).hexdigest() == att["sha256"] and att["url"] is None
    assert _stored_files(inst) == []
    messages, events, attempts, outbox = _rows(inst)
    (m,) = messages
    assert m.id == data["id"] and m.retention == "zero_retention" and m.status == "accepted"
    assert (m.subject, m.from_address, m.message_id_header, m.raw_key, m.parsed_key, m.imap_uid) == (None,) * 6
    assert [e.state for e in events] == ["delivered"] and outbox == []
    assert [(a.status_code, a.error) for a in attempts] == [(200, None)]


def test_any_endpoint_failing_answers_451_and_the_sender_keeps_the_message(zr):
    inst, (ok, failing), _ = zr(lambda req, n: (200, {}, 0), lambda req, n: (503, {}, 0))
    with pytest.raises(smtplib.SMTPDataError) as err, smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
        c.sendmail("billing@vendor.test", ["ap@private.example"], RAW)
    assert err.value.smtp_code == 451 and err.value.smtp_error.startswith(b"4.3.0")
    assert len(ok.requests) == 1 and len(failing.requests) == 1
    assert _stored_files(inst) == []
    messages, events, attempts, outbox = _rows(inst)
    assert [m.status for m in messages] == ["deferred"] and outbox == []
    assert sorted(a.status_code for a in attempts) == [200, 503]
    assert all(m.subject is None for m in messages)


def test_no_endpoint_at_all_is_deferred_not_lost(tmp_path, redis_url):
    inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
    try:
        inst.add_domain("private.example", "--zero-retention")
        inst.start("mx")
        with pytest.raises(smtplib.SMTPDataError) as err, smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
            c.sendmail("a@sender.test", ["x@private.example"], RAW)
        assert err.value.smtp_code == 451
        assert _stored_files(inst) == []
    finally:
        inst.stop_all()


def test_a_transaction_also_for_a_stored_domain_keeps_no_blobs_when_the_zero_retention_part_fails(
        tmp_path, redis_url):
    """The parse process writes the stored domain's blobs before the in-session delivery; when that
    delivery fails, the 451 must leave nothing behind (the sender retries the whole transaction)."""
    failing = WebhookReceiver(responder=lambda req, n: (503, {}, 0)).start()
    inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
    try:
        inst.add_domain("private.example", "--zero-retention")
        inst.add_domain("kept.example")
        inst.add_webhook(failing.url)
        inst.start("mx")
        with pytest.raises(smtplib.SMTPDataError) as err, smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
            c.sendmail("billing@vendor.test", ["ap@private.example", "ap@kept.example"], RAW)
        assert err.value.smtp_code == 451
        assert len(failing.requests) == 1
        assert _stored_files(inst) == []
        messages, _, _, outbox = _rows(inst)
        assert all(m.domain_id and m.retention == "zero_retention" for m in messages) and outbox == []
    finally:
        inst.stop_all()
        failing.stop()
