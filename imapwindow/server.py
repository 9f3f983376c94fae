"""The IMAP listener: asyncio, implicit TLS only (RFC 8314 §3.3: port 993); each connection is an
:class:`imapwindow.connection.ImapConnection` protocol (no task while the client is idle).

Per process: one Redis subscription (:class:`imapwindow.notify.Subscriber`) refreshes the shared
mailbox views of the domain an event names (coalesced: one refresh in flight per domain), and a
safety refresh every ``safety_refresh_s`` covers lost events.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from imapwindow.connection import ImapConnection
from imapwindow.context import ServerContext
from imapwindow.framing import FrameLimits
from imapwindow.notify import Subscriber
from store.app_passwords import revoked_among

log = logging.getLogger("mailkite.imap")

# asyncio's SSLProtocol gives every connection a 256 KiB receive buffer (CPython 3.11
# ``sslproto.SSLProtocol.max_size``): 250 MB for 1,000 idle clients. For a plain (not buffered)
# protocol it only sizes each ``SSLObject.read`` of a loop whose pieces are joined before
# ``data_received``, so 512 bytes cost clients nothing that matters (they send short commands).
TLS_READ_BUFFER = 512


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
        self.connections: set[ImapConnection] = set()
        limits = ctx.limits
        # Framing limits by login state: literals may be larger once logged in.
        self.frame_limits = {
            False: FrameLimits(limits.max_line, limits.max_literal_preauth, limits.max_command),
            True: FrameLimits(limits.max_line, limits.max_literal, limits.max_command)}

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
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: ImapConnection(self), host, port, ssl=self.tls_context,
                                               ssl_handshake_timeout=self.ctx.limits.handshake_timeout_s,
                                               backlog=1024)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.shutdown(b"* BYE Server shutting down\r\n")
        tasks = [c.task for c in self.connections if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in (self._safety, self._refresher):
            if task:
                task.cancel()
        if self.subscriber:
            await self.subscriber.stop()
        await self.ctx.authenticator.throttle.aclose()
        if self.server is not None:
            await self.server.wait_closed()

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


__all__ = ["ImapServer", "build_context"]


def build_context(db, blobs, *, hostname: str, publisher=None, limits=None, structures=None,
                  redis_url: str | None = None) -> ServerContext:
    """A :class:`ServerContext` with the production structure source unless ``structures`` is given;
    with ``redis_url`` the failed-login throttle is shared through that Redis by every IMAP process
    (:mod:`imapwindow.throttle`), else counted in this one."""
    from imapwindow.auth import Authenticator  # noqa: PLC0415
    from imapwindow.throttle import LoginThrottle, SharedLoginThrottle  # noqa: PLC0415
    from imapwindow.context import ImapLimits  # noqa: PLC0415
    from imapwindow.mailbox import ViewRegistry  # noqa: PLC0415
    from imapwindow.structures import default_structures  # noqa: PLC0415

    limits = limits or ImapLimits()
    throttle = (SharedLoginThrottle(limits.auth_max_failures, limits.auth_window_s, redis_url) if redis_url
                else LoginThrottle(limits.auth_max_failures, limits.auth_window_s))
    auth = Authenticator(db, throttle, failure_delay_s=limits.auth_failure_delay_s, hostname=hostname)
    return ServerContext(db=db, blobs=blobs, structures=structures or default_structures(db, blobs),
                         registry=ViewRegistry(db), authenticator=auth, limits=limits, hostname=hostname,
                         publisher=publisher)
