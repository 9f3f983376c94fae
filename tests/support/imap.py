"""IMAP test support: an in-process IMAP window over TLS, message delivery through the real ingest
pipeline, app-passwords, and a byte-exact transcript client.

    with ImapHarness(db, blobs, redis_url, tmp_path) as imap:
        pw = imap.password("example.test")               # a domain-scoped mk_imap_ password
        imap.deliver(raw, ["bob@example.test"])          # ingest like the MX does
        t = Transcript(imap.port); t.login(pw); t.send(b"a SELECT INBOX") -> exact bytes
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from datetime import timezone
from pathlib import Path

from sqlalchemy import update

from delivery.links import LinkSigner
from delivery.sender import AsyncWebhookSender
from imapwindow.context import ImapLimits
from imapwindow.notify import Publisher
from imapwindow.server import ImapServer, build_context
from inbound.pipeline import IngestPipeline
from inbound.types import SmtpEnvelope
from mailkite.tls import ensure_self_signed, server_context
from store.app_passwords import create_app_password
from store.blobs import BlobStore
from store.crypto import SecretBox
from store.db import Database
from store.domains import add_domain, get_domain, set_verified
from store.messages import Recipient
from store.models import Domain, utcnow

UIDVALIDITY = 1700000000


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context trusting our self-signed test certificate."""
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    return ctx


class ImapHarness:
    """An :class:`ImapServer` on a free loopback port, in a thread with its own event loop."""

    def __init__(self, db: Database, blobs: BlobStore, redis_url: str | None, workdir: Path, *,
                 limits: ImapLimits | None = None, hostname: str = "mx.mailkite.test",
                 shared_throttle: bool = False) -> None:
        """``shared_throttle``: count failed logins in ``redis_url`` as ``mailkite imap`` does; off by
        default, since every test connects from 127.0.0.1 and one module's wrong passwords would
        throttle the next module's logins."""
        self.db = db
        self.blobs = blobs
        self.redis_url = redis_url
        self.shared_throttle = shared_throttle
        self.cert, self.key = ensure_self_signed(workdir / "imap-tls", hostname)
        self.limits = limits or ImapLimits(auth_failure_delay_s=0.05)
        self.hostname = hostname
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="imap-test-loop", daemon=True)
        self.server: ImapServer | None = None
        self.publisher: Publisher | None = None
        self.pipeline: IngestPipeline | None = None

    def __enter__(self) -> "ImapHarness":
        self.thread.start()
        self.publisher = Publisher(self.redis_url) if self.redis_url else None
        ctx = build_context(self.db, self.blobs, hostname=self.hostname, publisher=self.publisher,
                            limits=self.limits, redis_url=self.redis_url if self.shared_throttle else None)
        self.server = ImapServer(ctx, server_context(self.cert, self.key), self.redis_url)
        self.call(self.server.start("127.0.0.1", 0))
        return self

    def __exit__(self, *exc) -> None:
        self.call(self.server.stop())
        if self.pipeline is not None:
            self.call(self.pipeline.zero_retention.sender.aclose()) if hasattr(
                self.pipeline.zero_retention, "sender") else None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if self.publisher:
            self.publisher.close()

    def call(self, coro, timeout: float = 60):
        """Run ``coro`` on the server's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ctx(self):
        return self.server.ctx

    # Setup helpers ------------------------------------------------------------------------------

    def domain(self, name: str, *, verified: bool = True, zero_retention: bool = False) -> None:
        """Add a domain (fixed UIDVALIDITY) and mark it verified."""
        add_domain(self.db, name, zero_retention=zero_retention)
        with self.db.session() as s:
            s.execute(update(Domain).where(Domain.name == name).values(imap_uidvalidity=UIDVALIDITY))
        if verified:
            set_verified(self.db, name, True)

    def set_received(self, domain: str, when) -> None:
        """Give every message of ``domain`` the INTERNALDATE ``when`` (fixed transcripts)."""
        from store.models import Message  # noqa: PLC0415

        dom = get_domain(self.db, domain)
        with self.db.session() as s:
            s.execute(update(Message).where(Message.domain_id == dom.id).values(received_at=when))

    def password(self, scope: str, label: str = "test") -> str:
        """A new app-password's secret."""
        return create_app_password(self.db, label, scope)[1]

    def deliver(self, raw: bytes, rcpts: list[str], *, mail_from: str = "sender@example.org") -> list[str]:
        """Run the real ingest pipeline for one transaction; returns the message ids."""
        if self.pipeline is None:
            self.pipeline = IngestPipeline(
                db=self.db, blobs=self.blobs, links=LinkSigner(b"k" * 32, "http://127.0.0.1:1", 60),
                zr_sender=AsyncWebhookSender(5.0), secret_box=SecretBox(b"k" * 32),
                on_stored=(lambda stored: self.publisher.mail_stored({m.domain for m in stored}))
                if self.publisher else None)
        recipients = [Recipient(r, get_domain(self.db, r.rsplit("@", 1)[1]), (r,)) for r in rcpts]
        envelope = SmtpEnvelope(session_id="test", mail_from=mail_from, rcpt_to=tuple(rcpts), client_ip="127.0.0.1",
                                helo="client.test", tls=True, received_at=utcnow().astimezone(timezone.utc))
        outcome = self.call(self.pipeline.run(envelope, raw, recipients))
        assert outcome.outcome == "accepted", outcome
        return outcome.message_ids


class Transcript:
    """A raw TLS connection: send a command line, get back the exact bytes up to its tagged answer."""

    def __init__(self, port: int, cert: Path, timeout: float = 15.0) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = client_context(cert).wrap_socket(raw)
        self.buf = b""
        self.greeting = self.read_line()

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; unread: {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def read_until_tag(self, tag: bytes) -> bytes:
        out = b""
        while True:
            line = self.read_line()
            out += line
            # Literals: read their bytes whole.
            while line.endswith(b"}\r\n") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1:-3].rstrip(b"+"))
                while len(self.buf) < size:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed inside a literal")
                    self.buf += chunk
                out += self.buf[:size]
                self.buf = self.buf[size:]
                line = self.read_line()
                out += line
            if line.startswith(tag + b" ") or line.startswith(b"* BYE") and tag == b"*":
                return out

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: bytes) -> bytes:
        """Send ``line`` (tag first) and return everything up to and including its tagged answer."""
        tag = line.split(b" ", 1)[0]
        self.sock.sendall(line + b"\r\n")
        return self.read_until_tag(tag)

    def login(self, password: str) -> bytes:
        return self.cmd(b"L1 LOGIN anyone " + password.encode())

    def read_all(self) -> bytes:
        """Everything until the server closes the connection."""
        out = self.buf
        self.buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except (ConnectionError, ssl.SSLError, OSError):
            return out

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# Sample messages (CRLF, as they arrive over SMTP) -----------------------------------------------

PLAIN = (b"From: Alice Example <alice@example.org>\r\n"
         b"To: Bob <bob@{domain}>\r\n"
         b"Subject: Lunch on Friday\r\n"
         b"Date: Mon, 2 Feb 2026 10:00:00 +0100\r\n"
         b"Message-ID: <plain-1@example.org>\r\n"
         b"X-Custom: one\r\n"
         b"\r\n"
         b"Hi Bob,\r\nshall we have lunch on Friday?\r\nAlice\r\n")

MULTIPART = (b"From: =?utf-8?q?Ren=C3=A9?= <rene@example.net>\r\n"
             b"To: carol@{domain}\r\n"
             b"Cc: bob@{domain}\r\n"
             b"Subject: =?utf-8?q?R=C3=A9sum=C3=A9?= attached\r\n"
             b"Date: Tue, 3 Feb 2026 09:30:00 -0500\r\n"
             b"Message-ID: <multi-2@example.net>\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
             b"\r\n"
             b"--b1\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: quoted-printable\r\n"
             b"\r\n"
             b"Voil=C3=A0 my r=C3=A9sum=C3=A9, with the word zeppelin.\r\n"
             b"--b1\r\n"
             b"Content-Type: application/pdf; name=\"cv.pdf\"\r\n"
             b"Content-Disposition: attachment; filename=\"cv.pdf\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"\r\n"
             b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago=\r\n"
             b"--b1--\r\n")

FORWARD = (b"From: dave@example.com\r\n"
           b"To: bob@{domain}\r\n"
           b"Subject: Fwd: old thread\r\n"
           b"Date: Wed, 4 Feb 2026 08:00:00 +0000\r\n"
           b"Message-ID: <fwd-3@example.com>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=XX\r\n"
           b"\r\n"
           b"--XX\r\n"
           b"Content-Type: text/plain\r\n"
           b"\r\n"
           b"See below.\r\n"
           b"--XX\r\n"
           b"Content-Type: message/rfc822\r\n"
           b"\r\n"
           b"From: erin@example.com\r\n"
           b"Subject: the old thread\r\n"
           b"\r\n"
           b"Original text.\r\n"
           b"--XX--\r\n")


def sample(template: bytes, domain: str) -> bytes:
    return template.replace(b"{domain}", domain.encode())


_counter = [0]


def unique_domain(prefix: str = "t") -> str:
    """A fresh domain name per test (tests share one database and server)."""
    _counter[0] += 1
    return f"{prefix}{_counter[0]}-{threading.get_ident() % 1000}.test"
