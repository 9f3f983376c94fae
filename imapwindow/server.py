"""The IMAP listener: asyncio, implicit TLS only (RFC 8314 §3.3: port 993), one task reading
commands and one executing them per connection.

Per connection: the reader frames whole commands (:mod:`imapwindow.framing`) into a queue of at
most ``max_pipelined`` commands (past that it stops reading until the executor catches up: TCP flow
control, not a refusal, so clients may pipeline freely and memory stays bounded); the executor parses
and runs them in order (:class:`imapwindow.session.Session`), writing each response whole. Every failure
becomes an IMAP answer, never a traceback: bad syntax ``BAD``, refusals ``NO``, unexpected errors
``NO [SERVERBUG]`` (logged), over-limit input ``BAD [TOOBIG]`` and/or ``BYE``.

Per process: one Redis subscription (:class:`imapwindow.notify.Subscriber`) refreshes the shared
mailbox views of the domain an event names (coalesced: one refresh in flight per domain), and a
safety refresh every ``safety_refresh_s`` covers lost events.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from imapwindow.context import ServerContext
from imapwindow.errors import CloseConnection, CommandRefused, ImapError
from imapwindow.framing import FrameLimits, SkipCommand, closing_tag, read_command, tag_of
from imapwindow.notify import Subscriber
from imapwindow.parsing.command import UntaggedBad, parse_command
from imapwindow.responses import capability_text
from imapwindow.session import Session
from store.app_passwords import revoked_among
from store.blobs import BlobError

log = logging.getLogger("mailkite.imap")

GREETING = b"* OK [CAPABILITY %s] mailkite IMAP ready\r\n"
# asyncio's SSLProtocol gives every connection a 256 KiB receive buffer (CPython 3.11
# ``sslproto.SSLProtocol.max_size``): 250 MB for 1,000 idle clients. A TLS record carries at most
# 16 KiB (RFC 8446 §5.1) and OpenSSL buffers a partial record itself, so 4 KiB reads cost clients
# nothing that matters: they send short commands.
TLS_READ_BUFFER = 4 * 1024


class Connection:
    """One client connection: reader task, command queue, executing session."""

    def __init__(self, ctx: ServerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.client_address = peer[0] if isinstance(peer, tuple) else str(peer)
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=ctx.limits.max_pipelined)
        self.session = Session(ctx, self.client_address, self.send, self.next_line)
        self.task: asyncio.Task | None = None

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_line(self, timeout: float | None) -> bytes | None:
        """The next framed line/command from the client (None at end of stream)."""
        item = await asyncio.wait_for(self.queue.get(), timeout) if timeout else await self.queue.get()
        if isinstance(item, ImapError):
            raise item
        return item

    async def _read_loop(self) -> None:
        limits = self.ctx.limits
        try:
            while True:
                frame = FrameLimits(limits.max_line,
                                    limits.max_literal if self.session.authenticated else limits.max_literal_preauth,
                                    limits.max_command)
                try:
                    command = await read_command(self.reader, frame, self.send)
                except SkipCommand:
                    continue
                if command is None:
                    await self.queue.put(None)
                    return
                # At most max_pipelined commands are read ahead; past that the reader waits, so TCP
                # flow control holds the client back (mbsync pipelines one FETCH per message).
                await self.queue.put(command)
        except CloseConnection as exc:
            exc.tag_hint = closing_tag(exc)  # type: ignore[attr-defined]
            await self.queue.put(exc)
        except (ConnectionError, ssl.SSLError, OSError):
            await self.queue.put(None)

    async def run(self) -> None:
        reader_task = asyncio.create_task(self._read_loop())
        try:
            await self.send(GREETING % capability_text(False).encode())
            while not self.session.logged_out:
                timeout = self.ctx.limits.autologout_s if self.session.authenticated else self.ctx.limits.preauth_timeout_s
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    await self.send(b"* BYE Autologout: idle for too long\r\n")
                    return
                if item is None:
                    return
                if isinstance(item, CloseConnection):
                    await self.send(item.render(getattr(item, "tag_hint", None)))
                    return
                if not await self._one(item):
                    return
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            reader_task.cancel()
            self.session.release()
            try:
                self.writer.close()
                await asyncio.wait_for(self.writer.wait_closed(), 5)
            except (Exception, asyncio.CancelledError):  # noqa: BLE001 - the peer may be gone already
                pass

    async def _one(self, raw: bytes) -> bool:
        """Parse and run one command; False when the connection must close."""
        tag = tag_of(raw)
        try:
            cmd = parse_command(raw)
        except UntaggedBad as exc:
            await self.send(exc.render(None))
            return True
        except ImapError as exc:
            await self.send(exc.render(tag))
            return True
        try:
            done = await self.session.execute(cmd)
            await self.send(done.render(cmd.tag))
            return True
        except CloseConnection as exc:
            await self.send(exc.render(cmd.tag))
            return False
        except ImapError as exc:
            await self.send(exc.render(cmd.tag))
            return True
        except asyncio.TimeoutError:
            await self.send(b"* BYE Autologout: idle for too long\r\n")
            return False
        except BlobError as exc:
            log.error("imap.blob_error", extra={"kv": {"error": str(exc)}})
            await self.send(CommandRefused("message content is temporarily unavailable; try again",
                                           "UNAVAILABLE").render(cmd.tag))
            return True
        except (ConnectionError, ssl.SSLError):
            raise
        except Exception:  # noqa: BLE001 - a client never sees a traceback
            log.exception("imap.command_failed", extra={"kv": {"command": cmd.name}})
            await self.send(CommandRefused("internal error; the problem was logged", "SERVERBUG").render(cmd.tag))
            return True


class ImapServer:
    """The listener plus the process-wide notification plumbing."""

    def __init__(self, ctx: ServerContext, tls_context: ssl.SSLContext, redis_url: str | None) -> None:
        self.ctx = ctx
        self.tls_context = tls_context
        self.redis_url = redis_url
        self.server: asyncio.base_events.Server | None = None
        self.subscriber: Subscriber | None = None
        self._dirty: set[str] = set()
        self._refresher: asyncio.Task | None = None
        self._safety: asyncio.Task | None = None
        self.connections: set[Connection] = set()

    async def start(self, host: str, port: int) -> None:
        import asyncio.sslproto  # noqa: PLC0415

        asyncio.sslproto.SSLProtocol.max_size = min(asyncio.sslproto.SSLProtocol.max_size, TLS_READ_BUFFER)
        if self.redis_url:
            self.subscriber = Subscriber(self.redis_url, self._on_event, self.ctx.registry.refresh_all)
            self.subscriber.start()
            try:
                await asyncio.wait_for(self.subscriber.ready.wait(), 10)
            except asyncio.TimeoutError:
                log.warning("imap.subscriber_not_ready")
        self._safety = asyncio.create_task(self._safety_loop())
        self.server = await asyncio.start_server(self._handle, host, port, ssl=self.tls_context,
                                                 limit=self.ctx.limits.max_line,
                                                 ssl_handshake_timeout=self.ctx.limits.handshake_timeout_s,
                                                 backlog=1024)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            try:
                conn.writer.write(b"* BYE Server shutting down\r\n")
            except Exception:  # noqa: BLE001 - the peer may be gone
                pass
            if conn.task is not None:
                conn.task.cancel()
        tasks = [c.task for c in self.connections if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in (self._safety, self._refresher):
            if task:
                task.cancel()
        if self.subscriber:
            await self.subscriber.stop()
        if self.server is not None:
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= self.ctx.limits.max_connections:
            writer.write(b"* BYE Too many connections; try again later\r\n")
            writer.close()
            return
        conn = Connection(self.ctx, reader, writer)
        conn.task = asyncio.current_task()
        self.connections.add(conn)
        self.ctx.sessions.add(conn.session)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self.ctx.sessions.discard(conn.session)

    async def _on_event(self, event: dict) -> None:
        kind = event.get("t")
        if kind in ("mail", "flags") and isinstance(event.get("domain"), str):
            self._dirty.add(event["domain"])
            if self._refresher is None or self._refresher.done():
                self._refresher = asyncio.create_task(self._refresh_dirty())
        elif kind == "revoked":
            for session in list(self.ctx.sessions):
                if session.credential is not None and session.credential.id == event.get("id"):
                    session.mark_revoked()

    async def _refresh_dirty(self) -> None:
        while self._dirty:
            domain = self._dirty.pop()
            await self.ctx.registry.refresh_domain(domain)

    async def _safety_loop(self) -> None:
        """Covers lost events: refresh every view, and end sessions (IDLE ones too) whose password was
        revoked without an event reaching us (e.g. Redis was down)."""
        while True:
            await asyncio.sleep(self.ctx.limits.safety_refresh_s)
            try:
                await self.ctx.registry.refresh_all()
                ids = {s.credential.id for s in self.ctx.sessions if s.credential is not None}
                revoked = await asyncio.to_thread(revoked_among, self.ctx.db, ids)
                for session in list(self.ctx.sessions):
                    if session.credential is not None and session.credential.id in revoked:
                        session.mark_revoked()
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                log.exception("imap.safety_refresh_failed")


__all__ = ["Connection", "ImapServer", "build_context"]


def build_context(db, blobs, *, hostname: str, publisher=None, limits=None, structures=None) -> ServerContext:
    """A :class:`ServerContext` with the production structure source unless ``structures`` is given."""
    from imapwindow.auth import Authenticator, LoginThrottle  # noqa: PLC0415
    from imapwindow.context import ImapLimits  # noqa: PLC0415
    from imapwindow.mailbox import ViewRegistry  # noqa: PLC0415
    from imapwindow.structures import default_structures  # noqa: PLC0415

    limits = limits or ImapLimits()
    auth = Authenticator(db, LoginThrottle(limits.auth_max_failures, limits.auth_window_s),
                         failure_delay_s=limits.auth_failure_delay_s, hostname=hostname)
    return ServerContext(db=db, blobs=blobs, structures=structures or default_structures(db, blobs),
                         registry=ViewRegistry(db), authenticator=auth, limits=limits, hostname=hostname,
                         publisher=publisher)
