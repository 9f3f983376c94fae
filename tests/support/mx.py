"""The MX listener with the real pipeline (real database and blob store) on its own event loop in
a background thread, for SMTP conversation tests over real sockets."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

import trustme

from delivery.links import LinkSigner
from delivery.sender import AsyncWebhookSender
from inbound.mx import MXHandler, start_mx_server
from inbound.pipeline import IngestPipeline
from inbound.recipients import DomainDirectory
from store.blobs import BlobStore
from store.crypto import SecretBox
from store.db import Database
from store.domains import load_domain_map

SECRET = b"test-secret-key-0123456789abcdef0123456789"


class MXThread:
    """Start with :meth:`start`; ``port`` is the listening port; ``client_tls`` trusts its certificate."""

    def __init__(self, db: Database, blobs: BlobStore, *, max_message_bytes: int = 1024 * 1024,
                 max_recipients: int = 5, hostname: str = "mx.mailkite.test") -> None:
        self.db, self.blobs = db, blobs
        self.max_message_bytes, self.max_recipients, self.hostname = max_message_bytes, max_recipients, hostname
        ca = trustme.CA()
        cert = ca.issue_cert(hostname, "127.0.0.1")
        self.server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.server_tls)
        self.client_tls = ssl.create_default_context()
        ca.configure_trust(self.client_tls)
        self.client_tls.check_hostname = False
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.executor = ThreadPoolExecutor(2)
        self.sender = AsyncWebhookSender(5.0)
        pipeline = IngestPipeline(db=self.db, blobs=self.blobs,
                                  links=LinkSigner(SECRET, "http://127.0.0.1:1", 3600),
                                  zr_sender=self.sender, secret_box=SecretBox(SECRET),
                                  parse_executor=self.executor)
        self.handler = MXHandler(pipeline=pipeline, directory=DomainDirectory(lambda: load_domain_map(self.db)),
                                 max_recipients=self.max_recipients)
        self.server = await start_mx_server(self.handler, host="127.0.0.1", port=0, hostname=self.hostname,
                                            max_message_bytes=self.max_message_bytes, tls_context=self.server_tls)
        self.port = self.server.sockets[0].getsockname()[1]

    def start(self) -> "MXThread":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def _close():
            self.server.close()
            await self.sender.aclose()

        asyncio.run_coroutine_threadsafe(_close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.executor.shutdown(wait=True)


class RawSMTP:
    """A byte-level SMTP client for hostile conversations (smtplib would clean up what we send)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self) -> tuple[int, list[str]]:
        """One (possibly multi-line) reply: (code, lines of text)."""
        lines = []
        while True:
            line = self.line().decode("utf-8", "replace")
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, text: str) -> tuple[int, list[str]]:
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.sock.close()
