"""Zero-retention domains (DESIGN.md "Invariants"): delivered during the SMTP session with attachments
inline, 250 only when every endpoint answered 2xx (else 451 4.3.0), and nothing at rest but ids,
times and status codes."""

from __future__ import annotations

import base64
import hashlib
import json
import smtplib
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from store.crypto import SecretBox
from store.db import Database
from store.domains import add_domain
from store.endpoints import add_endpoint
from store.events import EarlierEvent, InlineAttempt, earlier_inline_deliveries, record_inline_deliveries
from store.messages import NewTransaction, Recipient
from store.models import DeliveryAttempt, Event, Message, MessageStatus, OutboxEntry, Retention
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


def test_a_retry_by_the_sending_server_keeps_its_webhook_ids_and_skips_endpoints_already_served(zr):
    """451 because one endpoint failed; the sending server retries the same bytes: the endpoint that
    answered 2xx is not sent the message again, the other gets it with the same ``webhook-id`` and
    message id as before, and the rows record one message, its two events and three attempts."""
    inst, (ok, flaky), (ok_secret, flaky_secret) = zr(lambda req, n: (200, {}, 0),
                                                       lambda req, n: (503 if n == 0 else 200, {}, 0))
    with pytest.raises(smtplib.SMTPDataError) as err, smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
        c.sendmail("billing@vendor.test", ["ap@private.example"], RAW)
    assert err.value.smtp_code == 451
    with smtplib.SMTP("127.0.0.1", inst.mx_port) as c:  # the sending server's retry, from another relay
        c.ehlo("relay2.vendor.test")
        assert c.sendmail("billing@vendor.test", ["ap@private.example"], RAW) == {}
    assert len(ok.requests) == 1 and len(flaky.requests) == 2
    first, second = flaky.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] != ok.requests[0].headers["webhook-id"]
    ids = {Webhook(ok_secret).verify(ok.requests[0].body, ok.requests[0].headers)["data"]["id"]}
    ids |= {Webhook(flaky_secret).verify(r.body, r.headers)["data"]["id"] for r in flaky.requests}
    messages, events, attempts, outbox = _rows(inst)
    assert [m.id for m in messages] == sorted(ids) and [m.status for m in messages] == ["accepted"]
    assert sorted((e.state, e.attempts) for e in events) == [("delivered", 1), ("delivered", 2)]
    assert sorted((a.attempt, a.status_code) for a in attempts) == [(1, 200), (1, 503), (2, 200)]
    assert outbox == [] and _stored_files(inst) == []

    # Other bytes (here: another Message-ID) are another message, with ids of its own.
    other = RAW.replace(b"Message-ID: <", b"Message-ID: <other-", 1)
    assert other != RAW
    with smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
        assert c.sendmail("billing@vendor.test", ["ap@private.example"], other) == {}
    assert len(ok.requests) == 2 and ok.requests[1].headers["webhook-id"] != ok.requests[0].headers["webhook-id"]
    assert len(_rows(inst)[0]) == 2


def test_a_recipient_whose_domain_has_no_endpoint_defers_the_transaction(tmp_path, redis_url):
    """One zero-retention domain has an endpoint, the other none: the message cannot be accepted
    for the second without losing it, so the whole transaction is 451, and the served endpoint is
    not sent it again when the sending server retries."""
    receiver = WebhookReceiver().start()
    inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
    try:
        inst.add_domain("private.example", "--zero-retention")
        inst.add_domain("bare.example", "--zero-retention")
        inst.add_webhook(receiver.url, "--domain", "private.example")
        inst.start("mx")
        for _ in range(2):
            with pytest.raises(smtplib.SMTPDataError) as err, smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
                c.sendmail("a@sender.test", ["x@private.example", "y@bare.example"], RAW)
            assert err.value.smtp_code == 451
        assert len(receiver.requests) == 1
    finally:
        inst.stop_all()
        receiver.stop()


def test_earlier_tries_are_found_by_hash_sender_inbox_and_window(db):
    """store.events on SQLite and PostgreSQL: an earlier try is matched only by the same hash,
    envelope sender and inbox within the window; a recorded retry updates its rows."""
    box = SecretBox(b"zero-retention-test-key-0123456789abcdef")
    domain = add_domain(db, "private.example", zero_retention=True)
    ep_ok = add_endpoint(db, box, "http://127.0.0.1:9/ok", "whsec_" + "A" * 32).id
    ep_failing = add_endpoint(db, box, "http://127.0.0.1:9/failing", "whsec_" + "B" * 32).id
    at = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    rcpt = Recipient("ap@private.example", domain, ("ap@private.example",))
    tx = NewTransaction(transaction_id="txn_1", recipients=[rcpt], mail_from="billing@vendor.test", client_ip=None,
                        helo=None, tls=False, received_at=at, size=10, sha256="ab" * 32, raw_key=None,
                        parsed_key=None, retention=Retention.ZERO_RETENTION, status=MessageStatus.DEFERRED,
                        create_events=False, message_ids=["msg_1"])
    record_inline_deliveries(db, tx, [InlineAttempt("evt_ok", "msg_1", ep_ok, at, 200, 5.0, None),
                                      InlineAttempt("evt_failing", "msg_1", ep_failing, at, 503, 5.0, None)])

    def lookup(**changes) -> dict:
        args = dict(sha256="ab" * 32, mail_from="billing@vendor.test", inboxes=[(domain.id, "ap@private.example")],
                    since=at - timedelta(days=5)) | changes
        with db.read() as s:
            return earlier_inline_deliveries(s, **args)

    found = lookup()
    assert list(found) == ["ap@private.example"] and found["ap@private.example"].message_id == "msg_1"
    assert found["ap@private.example"].events == {ep_ok: EarlierEvent("evt_ok", True, 1),
                                                  ep_failing: EarlierEvent("evt_failing", False, 1)}
    assert lookup(sha256="cd" * 32) == {} and lookup(mail_from="other@vendor.test") == {}
    assert lookup(inboxes=[(domain.id, "other@private.example")]) == {}
    assert lookup(since=at + timedelta(seconds=1)) == {}

    later = at + timedelta(minutes=5)
    record_inline_deliveries(db, replace(tx, transaction_id="txn_2", received_at=later, status=MessageStatus.ACCEPTED),
                             [InlineAttempt("evt_failing", "msg_1", ep_failing, later, 200, 4.0, None, 2)], found)
    with db.read() as s:
        assert [(m.id, m.status) for m in s.scalars(select(Message))] == [("msg_1", "accepted")]
        assert sorted((e.id, e.state, e.attempts) for e in s.scalars(select(Event))) == [
            ("evt_failing", "delivered", 2), ("evt_ok", "delivered", 1)]
        assert sorted((a.event_id, a.attempt, a.status_code) for a in s.scalars(select(DeliveryAttempt))) == [
            ("evt_failing", 1, 503), ("evt_failing", 2, 200), ("evt_ok", 1, 200)]
