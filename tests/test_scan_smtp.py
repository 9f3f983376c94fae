"""Scanning decided in the SMTP session, end to end: a real MX listener (aiosmtpd + the ingest
pipeline, SQLite + a local blob folder) talking to smtplib, with the real clamd and rspamd behind it.
The last test runs ``mailkite serve`` as a user would, configured through MAILKITE_SPAM_URL and
MAILKITE_VIRUS_URL, and reads the verdicts from the signed webhook."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from delivery.links import LinkSigner
from delivery.sender import AsyncWebhookSender
from inbound.mx import MXHandler, start_mx_server
from inbound.pipeline import IngestPipeline
from inbound.recipients import DomainDirectory
from inbound.scan.engines import spam_engine_from_url, virus_engine_from_url
from inbound.scan.scanner import MessageScanner
from store.blobs import LocalBlobStore
from store.crypto import SecretBox
from store.db import Database
from store.domains import add_domain, load_domain_map, update_policy
from store.migrate import upgrade
from store.models import Message
from tests.support.rspamd import gtube
from tests.test_scan_engines import INFECTED_MESSAGES, message, raw

KEY = b"scan-tests-secret-key-0123456789abcdef"


class InProcessMx:
    """The MX listener and pipeline on a free loopback port, run by an event loop in a thread."""

    def __init__(self, root: Path, scanner: MessageScanner, domains: dict[str, dict[str, str]]) -> None:
        self.db = Database(f"sqlite:///{root / 'mailkite.db'}")
        upgrade(self.db)
        for name, policy in domains.items():
            add_domain(self.db, name)
            if policy:
                update_policy(self.db, name, policy)
        self.blob_root = root / "blobs"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.pipeline = IngestPipeline(db=self.db, blobs=LocalBlobStore(self.blob_root),
                                       links=LinkSigner(KEY, "http://127.0.0.1:9", 3600),
                                       zr_sender=AsyncWebhookSender(5.0), secret_box=SecretBox(KEY), scan=scanner)
        handler = MXHandler(pipeline=self.pipeline, directory=DomainDirectory(lambda: load_domain_map(self.db)),
                            max_recipients=50)
        self.server = self.call(start_mx_server(handler, host="127.0.0.1", port=0, hostname="mx.test",
                                                max_message_bytes=10 * 1024 * 1024, tls_context=None))
        self.port = self.server.sockets[0].getsockname()[1]

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def send(self, data: bytes, rcpts: list[str], mail_from: str = "alice@example.org") -> tuple[int, str]:
        """One SMTP transaction; the end-of-DATA reply as (code, text)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as smtp:
            smtp.ehlo("mail.example.org")
            smtp.mail(mail_from)
            for rcpt in rcpts:
                code, text = smtp.rcpt(rcpt)
                assert code == 250, text
            code, text = smtp.data(data)
            return code, text.decode()

    def stored(self) -> list[Message]:
        with self.db.read() as s:
            return list(s.scalars(select(Message).order_by(Message.received_at)))

    def count(self) -> tuple[int, int]:
        """(message rows, blob files): both must stay put when a message is refused."""
        with self.db.read() as s:
            rows = s.scalar(select(func.count()).select_from(Message))
        return rows, sum(1 for p in self.blob_root.rglob("*") if p.is_file()) if self.blob_root.exists() else 0

    def raw_copy(self, msg: Message) -> bytes:
        return (self.blob_root / msg.raw_key).read_bytes()

    def close(self) -> None:
        self.server.close()
        self.call(self.pipeline.scan.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.db.dispose()


DOMAINS = {
    "plain.test": {},
    "open.test": {"scan_fail_open": "on"},
    "strict.test": {"spam_reject_score": "10"},
    "lists.test": {"spam_reject_score": "5", "sender_allowlist": "friend@example.org",
                   "sender_blocklist": ".spammy.test"},
}


@pytest.fixture(scope="module")
def mx(tmp_path_factory, clamd_server, rspamd_server):
    scanner = MessageScanner(spam=spam_engine_from_url(rspamd_server.url),
                             virus=virus_engine_from_url(clamd_server.url), hostname="mx.test")
    server = InProcessMx(tmp_path_factory.mktemp("scan-mx"), scanner, DOMAINS)
    yield server
    server.close()


def last(mx: InProcessMx) -> Message:
    return mx.stored()[-1]


@pytest.mark.parametrize("case", sorted(INFECTED_MESSAGES))
def test_malware_is_refused_in_the_session_and_nothing_is_stored(mx, case):
    before = mx.count()
    code, text = mx.send(INFECTED_MESSAGES[case](), ["bob@plain.test"])
    assert code == 554 and text.startswith("5.7.1") and "Eicar-Test-Signature" in text
    assert mx.count() == before


def test_malware_is_refused_even_for_fail_open_and_allowlisted(mx):
    data = INFECTED_MESSAGES["plain attachment"]()
    assert mx.send(data, ["bob@open.test"])[0] == 554
    assert mx.send(data, ["bob@lists.test"], mail_from="friend@example.org")[0] == 554


def test_clean_mail_is_accepted_with_its_verdicts_stored_and_in_headers(mx):
    original = raw(message())
    code, text = mx.send(original, ["bob@plain.test"])
    assert code == 250, text
    msg = last(mx)
    assert msg.virus == {"verdict": "clean", "engine": "clamav", "signatures": []}
    assert msg.spam["verdict"] == "ham" and msg.spam["engine"] == "rspamd" and msg.spam["required"] == 15.0
    assert {"name", "score", "options"} <= set(msg.spam["symbols"][0])
    stored = mx.raw_copy(msg)
    head, _, rest = stored.partition(b"X-Virus-Status: Clean\r\n")
    assert head.startswith(b"X-Spam-Status: No, score=")
    assert b"\r\nX-Virus-Scanned: clamav at mx.test\r\n" in head and b"X-Spam-Flag" not in head
    assert rest == original  # the message as received follows our trace fields, byte for byte


def test_forged_verdict_fields_arriving_with_spam_are_removed(mx):
    """Spam that says ``X-Spam-Status: No`` and ``X-Virus-Status: Clean`` of itself: only our
    fields remain in the stored copy (and the webhook's headers), every other byte as received."""
    forged = (b"X-Spam-Status: No, score=-5.0 required=5.0\r\n\ttests=ALL_TRUSTED\r\n"
              b"X-Spam-Flag: NO\r\nx-spam-level:\r\nX-Spam-Score: -5.0\r\n"
              b"X-Virus-Scanned: clamav at mx.test\r\nX-Virus-Status: Clean\r\n"
              b"X-Spam-Report: kept: not a verdict field of ours\r\n")
    original = raw(message(gtube()))
    code, _ = mx.send(forged + original, ["bob@plain.test"])
    assert code == 250
    stored = mx.raw_copy(last(mx))
    assert stored.startswith(b"X-Spam-Status: Yes, score=15.00")
    head, _, rest = stored.partition(b"X-Virus-Status: Clean\r\n")
    assert rest == b"X-Spam-Report: kept: not a verdict field of ours\r\n" + original
    assert head.count(b"X-Spam-Status") == 1 and b"X-Spam-Flag: NO" not in head and b"x-spam-level" not in head
    assert head.count(b"X-Virus-Scanned") == 1 and b"X-Spam-Score" not in head


def test_gtube_is_accepted_as_spam_or_refused_above_the_reject_score(mx):
    code, _ = mx.send(raw(message(gtube())), ["bob@plain.test"])
    assert code == 250
    msg = last(mx)
    assert msg.spam["verdict"] == "spam" and "GTUBE" in [s["name"] for s in msg.spam["symbols"]]
    assert mx.raw_copy(msg).startswith(b"X-Spam-Status: Yes, score=15.00 required=15.00 engine=rspamd tests=GTUBE"
                                       b"\r\nX-Spam-Flag: YES\r\n")
    before = mx.count()
    code, text = mx.send(raw(message(gtube())), ["bob@strict.test"])
    assert code == 550 and text.startswith("5.7.1") and "spam" in text
    # One domain's reject score refuses the whole transaction (strictest outcome).
    code, _ = mx.send(raw(message(gtube())), ["bob@plain.test", "carol@strict.test"])
    assert code == 550
    assert mx.count() == before


def test_allow_and_block_lists_win_over_scores(mx):
    code, _ = mx.send(raw(message(gtube(), sender="friend@example.org")), ["bob@lists.test"],
                      mail_from="friend@example.org")
    assert code == 250
    msg = last(mx)
    assert msg.spam["verdict"] == "ham" and msg.spam["engine"] == "sender_allowlist"
    assert msg.spam["symbols"] == [{"name": "SENDER_ALLOWLIST", "score": 0.0, "options": ["friend@example.org"]}]
    assert msg.virus["verdict"] == "clean"
    # The header From alone is enough to be blocked; the message is clean and would score low.
    before = mx.count()
    code, text = mx.send(raw(message(sender="sales@mail.spammy.test")), ["bob@lists.test"])
    assert code == 550 and text.startswith("5.7.1") and "blocked" in text
    assert mx.count() == before


def test_scanner_stopped_mid_test_defers_unless_fail_open(mx, clamd_server):
    clamd_server.stop()
    try:
        before = mx.count()
        code, text = mx.send(raw(message()), ["bob@plain.test"])
        assert code == 451 and text.startswith("4.7.1")
        # Strictest outcome: one fail-closed domain defers the whole transaction.
        assert mx.send(raw(message()), ["bob@open.test", "bob@plain.test"])[0] == 451
        assert mx.count() == before
        code, _ = mx.send(raw(message()), ["bob@open.test"])
        assert code == 250
        msg = last(mx)
        assert msg.virus == {"verdict": "unscanned", "engine": "clamav", "signatures": []}
        assert msg.spam["verdict"] == "ham"
        assert b"X-Virus-Status: Unscanned (unavailable)\r\n" in mx.raw_copy(msg)
    finally:
        clamd_server.start()
    assert mx.send(raw(message()), ["bob@plain.test"])[0] == 250


def test_slow_scanner_hits_its_deadline(mx, clamd_server, rspamd_server):
    quick = MessageScanner(spam=spam_engine_from_url(rspamd_server.url.replace("timeout=5", "timeout=0.5")),
                           virus=virus_engine_from_url(clamd_server.url), hostname="mx.test")
    normal, mx.pipeline.scan = mx.pipeline.scan, quick
    rspamd_server.pause()
    try:
        code, text = mx.send(raw(message()), ["bob@plain.test"])
        assert code == 451 and text.startswith("4.7.1")
        code, _ = mx.send(raw(message()), ["bob@open.test"])
        assert code == 250
        assert last(mx).spam["verdict"] == "unscanned"
        assert b"X-Spam-Status: Unscanned, reason=timeout engine=rspamd\r\n" in mx.raw_copy(last(mx))
    finally:
        rspamd_server.resume()
        mx.pipeline.scan = normal
        mx.call(quick.aclose())


@pytest.mark.slow
def test_mailkite_serve_scans_with_configured_scanners(instance, receiver, clamd_server, rspamd_server):
    instance.extra_env.update({"MAILKITE_SPAM_URL": rspamd_server.url, "MAILKITE_VIRUS_URL": clamd_server.socket_url})
    instance.add_domain("example.com")
    instance.cli("domain", "set", "example.com", "sender_blocklist=spammer@example.net")
    instance.add_webhook(receiver.url)
    instance.start("serve")
    with smtplib.SMTP("127.0.0.1", instance.mx_port, timeout=60) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("alice@example.org", ["bob@example.com"], INFECTED_MESSAGES["zipped attachment"]())
        assert refused.value.smtp_code == 554
        with pytest.raises(smtplib.SMTPDataError) as blocked:
            smtp.sendmail("spammer@example.net", ["bob@example.com"], raw(message()))
        assert blocked.value.smtp_code == 550
        smtp.sendmail("alice@example.org", ["bob@example.com"], raw(message(gtube())))
    data = receiver.wait_for(1)[0].json()["data"]
    assert data["spam"]["verdict"] == "spam" and data["spam"]["engine"] == "rspamd"
    assert data["virus"] == {"verdict": "clean", "engine": "clamav", "signatures": []}
    assert len(receiver.requests) == 1  # the refused messages produced nothing
