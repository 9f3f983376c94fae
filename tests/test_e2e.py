"""End to end over real sockets: ``mailkite serve`` as a process, mail sent with smtplib, webhooks
received by a real HTTP server and verified with the ``standardwebhooks`` library unchanged, the JSON
compared with what the stdlib ``email`` package reads from the same bytes.

Runs on SQLite + local folder and on PostgreSQL + S3 (moto server over HTTP).
"""

from __future__ import annotations

import hashlib
import json
import smtplib
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.request import urlopen

import pytest
from standardwebhooks import Webhook

from tests.conftest import SAMPLES
from tests.support.corpus import CORPUS
from tests.support.instance import MailkiteInstance

STACKS = ["sqlite-local", "postgresql-s3"]


def to_wire(raw: bytes) -> bytes:
    """The bytes as SMTP carries them: every bare LF or bare CR becomes CRLF, and the content ends
    with CRLF (smtplib adds one before the final dot, RFC 5321 §4.1.1.4)."""
    wire = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return wire if wire.endswith(b"\r\n") else wire + b"\r\n"


@pytest.fixture(params=STACKS)
def stack(request, tmp_path, redis_url, receiver):
    db_kind, blob_kind = request.param.split("-")
    inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
    if db_kind == "postgresql":
        inst.database_url = _fresh_pg(request)
    if blob_kind == "s3":
        s3 = request.getfixturevalue("s3_server")
        inst.blob_url = f"s3://{s3.create_bucket()}/mail"
        inst.s3_endpoint_url = s3.endpoint_url
    inst.add_domain("example.com")
    _, secret = inst.add_webhook(receiver.url)
    inst.start("serve")
    yield inst, receiver, secret
    inst.stop_all()


def _fresh_pg(request) -> str:
    from tests.conftest import _truncate_all
    from store.db import Database

    pg = request.getfixturevalue("pg_database")
    db = Database(pg.url)
    _truncate_all(db)
    db.dispose()
    return pg.url


def send(port: int, raw: bytes, rcpt: str = "support@example.com", mail_from: str = "sender@sender.test") -> str:
    """Send one message; returns the message id from the 250 reply."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("client.test")
        c.mail(mail_from)
        c.rcpt(rcpt)
        code, reply = c.data(raw)
    assert code == 250, (code, reply)
    return reply.decode().rsplit(" ", 1)[1]


def verified(receiver_requests, secret: str) -> dict[str, dict]:
    """Every received webhook, signature checked by the reference library, keyed by message id."""
    wh = Webhook(secret)
    out = {}
    for req in receiver_requests:
        doc = wh.verify(req.body, req.headers)
        assert req.headers["webhook-id"].startswith("evt_")
        out[doc["data"]["id"]] = doc
    return out


def test_samples_arrive_signed_with_the_documented_json(stack):
    inst, receiver, secret = stack
    sent = {}
    for path in sorted(SAMPLES.glob("*.eml")):
        sent[send(inst.mx_port, path.read_bytes())] = path
    docs = verified(receiver.wait_for(len(sent), timeout=60), secret)
    assert set(docs) == set(sent)
    for msg_id, path in sent.items():
        doc = docs[msg_id]
        expected = json.loads(path.with_suffix(".json").read_text())
        data = doc["data"]
        assert doc["type"] == "message.received" and doc["timestamp"].endswith("Z")
        assert data["domain"] == "example.com" and data["inbox"] == "support@example.com"
        assert data["envelope"] == {"mail_from": "sender@sender.test", "rcpt_to": ["support@example.com"],
                                    "client_ip": "127.0.0.1", "helo": "client.test", "tls": False}
        assert data["retention"] == "stored" and data["thread_id"].startswith("thr_")
        for key, value in expected.items():
            if key == "size":
                continue  # the stored copy is larger by our trace fields, checked below
            if key == "attachments":
                assert [{k: a[k] for k in value[0]} for a in data[key]] == value if value else data[key] == []
            else:
                assert data[key] == value, key
        # The stored copy is our trace fields (RFC 8601 Authentication-Results first) followed by the
        # received bytes unchanged; the webhook's raw_url serves exactly that, and size counts it.
        with urlopen(data["raw_url"], timeout=10) as r:
            stored = r.read()
        assert stored.startswith(b"Authentication-Results: mx.mailkite.test;")
        assert stored.endswith(path.read_bytes()) and data["size"] == len(stored)
        for att in data["attachments"]:
            with urlopen(att["url"], timeout=10) as r:
                body = r.read()
            assert len(body) == att["size"] and hashlib.sha256(body).hexdigest() == att["sha256"]


def test_corpus_over_smtp_matches_the_stdlib_reading(stack):
    inst, receiver, secret = stack
    files = sorted(CORPUS.rglob("*.eml"))
    assert len(files) > 400
    sent: dict[str, bytes] = {}
    with smtplib.SMTP("127.0.0.1", inst.mx_port, timeout=120) as c:
        c.ehlo("client.test")
        for path in files:
            wire = to_wire(path.read_bytes())
            c.mail("sender@sender.test")
            c.rcpt("support@example.com")
            code, reply = c.data(wire)
            assert code == 250, (path, code, reply)
            sent[reply.decode().rsplit(" ", 1)[1]] = wire
    docs = verified(receiver.wait_for(len(sent), timeout=300), secret)
    assert set(docs) == set(sent)

    compared = {"subject": 0, "from": 0, "message_id": 0, "date": 0}
    for msg_id, wire in sent.items():
        data = docs[msg_id]["data"]
        assert data["size"] > len(wire)  # the received bytes plus our trace fields
        std = BytesParser(policy=policy.default).parsebytes(wire)
        if _clean(std, "subject"):
            assert _ws(data["subject"]) == _ws(str(std["subject"])), msg_id
            compared["subject"] += 1
        if _clean(std, "from") and len(std["from"].addresses) == 1 and std["from"].addresses[0].addr_spec.count("@") == 1:
            assert data["from"]["address"] == std["from"].addresses[0].addr_spec
            compared["from"] += 1
        if _clean(std, "message-id"):
            assert data["message_id"] == str(std["message-id"]).strip()
            compared["message_id"] += 1
        if _clean(std, "date"):
            try:
                expected_date = parsedate_to_datetime(str(std["date"]))
            except (TypeError, ValueError):
                expected_date = None
            if expected_date is not None and expected_date.tzinfo is not None:
                assert data["date"] is not None
                compared["date"] += 1
    print("fields compared with the stdlib reading:", compared)
    assert min(compared.values()) > 300


def _clean(msg, name: str) -> bool:
    """The header exists once and the stdlib read it without a defect. Raw 8-bit bytes that are not
    UTF-8 come back from the stdlib as U+FFFD; we read them as Windows-1252, so there is nothing to
    compare against in that case."""
    try:
        values = msg.get_all(name) or []
        return (len(values) == 1 and not getattr(values[0], "defects", ()) and str(values[0]).strip() != ""
                and "\ufffd" not in str(values[0]))
    except Exception:  # noqa: BLE001 - the stdlib raises on some hostile headers
        return False


def _ws(value: str | None) -> str:
    return " ".join((value or "").split())


def test_two_domains_are_isolated_and_endpoint_domain_filter_holds(tmp_path, redis_url):
    from tests.support.servers import WebhookReceiver

    all_hook, only_b = WebhookReceiver().start(), WebhookReceiver().start()
    inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
    try:
        inst.add_domain("a.example")
        inst.add_domain("b.example")
        inst.add_webhook(all_hook.url)
        inst.add_webhook(only_b.url, "--domain", "b.example")
        inst.start("serve")
        raw = (SAMPLES / "plain.eml").read_bytes()
        with smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
            c.sendmail("x@sender.test", ["one@a.example", "two@b.example"], raw)
        a_docs = [r.json()["data"] for r in all_hook.wait_for(2)]
        b_docs = [r.json()["data"] for r in only_b.wait_for(1)]
        assert sorted(d["inbox"] for d in a_docs) == ["one@a.example", "two@b.example"]
        assert [d["inbox"] for d in b_docs] == ["two@b.example"]
        # Each recipient sees only its own domain's envelope recipients (no Bcc leak across domains).
        for d in a_docs:
            assert d["envelope"]["rcpt_to"] == [d["inbox"]]
    finally:
        inst.stop_all()
        all_hook.stop()
        only_b.stop()
