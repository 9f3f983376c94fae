"""One client connection as an :class:`asyncio.Protocol`: no task while the client is idle.

Bytes are framed into commands as they arrive (:class:`imapwindow.framing.CommandFramer`) and
queued; a short-lived task executes the queue in order (:class:`imapwindow.session.Session`), writing
each response whole, and ends when the queue is empty. A connection waiting for its next command, or
sitting in IDLE (RFC 2177), holds only its TLS state, its session and one timer: 1,000 idle clients
fit the issue's 100 MB (a task, a stream pair and a queue per connection cost more than the TLS state).

- Pipelining: at most ``max_pipelined`` commands are queued; past that reading pauses until the
  executor catches up (TCP flow control, not a refusal: mbsync pipelines one FETCH per message).
- IDLE: ``do_idle`` answers ``+ idling`` and returns :data:`~imapwindow.session.IDLING`; from then
  the connection pushes updates when the session's views change (:meth:`Session.changed`), and the
  next line ends IDLE (:meth:`Session.end_idle`). After ``idle_timeout_s`` the server ends it.
- Timeouts: ``preauth_timeout_s`` before login, ``autologout_s`` after (RFC 3501 §5.4), counted
  from the end of the last command.
- Every failure becomes an IMAP answer, never a traceback: bad syntax ``BAD``, refusals ``NO``,
  unexpected errors ``NO [SERVERBUG]`` (logged), over-limit input ``BAD [TOOBIG]`` and/or ``BYE``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING

from imapwindow.errors import CloseConnection, CommandRefused, ImapError
from imapwindow.framing import CommandFramer, closing_tag, tag_of
from imapwindow.parsing.command import UntaggedBad, parse_command
from imapwindow.responses import capability_text
from imapwindow.session import IDLING, Session
from store.blobs import BlobError

if TYPE_CHECKING:
    from imapwindow.server import ImapServer

log = logging.getLogger("mailkite.imap")

GREETING = b"* OK [CAPABILITY %s] mailkite IMAP ready\r\n"
AUTOLOGOUT = b"* BYE Autologout: idle for too long\r\n"
IDLE_TIMEOUT = b"* BYE IDLE timed out after 30 minutes; please reconnect (RFC 2177)\r\n"
REVOKED = b"* BYE this app-password has been revoked\r\n"


class ImapConnection(asyncio.Protocol):
    """The protocol instance of one accepted TLS connection (``loop.create_server`` factory)."""

    __slots__ = ("server", "ctx", "transport", "session", "framer", "items", "task", "timer", "idle_tag",
                 "push_pending", "closed", "released", "reading_paused", "framing_stopped", "_write_waiter",
                 "_line_waiter")

    def __init__(self, server: ImapServer) -> None:
        self.server = server
        self.ctx = server.ctx
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.framer = CommandFramer()
        # Queued commands, oldest first: a list (at most max_pipelined long) is ~0.5 KiB smaller per
        # connection than a deque.
        self.items: list[bytes | CloseConnection] = []
        self.task: asyncio.Task | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.idle_tag: bytes | None = None     # the tag of the IDLE in progress
        self.push_pending = False              # a change to push to the client in IDLE
        self.closed = False
        self.released = False
        self.reading_paused = False
        self.framing_stopped = False
        self._write_waiter: asyncio.Future | None = None
        self._line_waiter: asyncio.Future | None = None

    # asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self.server.connections) >= self.ctx.limits.max_connections:
            transport.write(b"* BYE Too many connections; try again later\r\n")  # type: ignore[attr-defined]
            self.closed = self.released = True
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else str(peer)
        self.session = Session(self.ctx, address, self.send, self.next_line, on_change=self._changed)
        self.server.connections.add(self)
        self.ctx.sessions.add(self.session)
        transport.write(GREETING % capability_text(False).encode())  # type: ignore[attr-defined]
        self._arm_inactivity()

    def data_received(self, data: bytes) -> None:
        if self.closed or self.framing_stopped:
            return
        self.framer.feed(data)
        self._frame()
        self._kick()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        for waiter, value in ((self._write_waiter, ConnectionResetError("connection lost")),
                              (self._line_waiter, None)):
            if waiter is not None and not waiter.done():
                if isinstance(value, Exception):
                    waiter.set_exception(value)
                else:
                    waiter.set_result(value)
        if self.task is None:
            self._release()

    def pause_writing(self) -> None:
        if self._write_waiter is None:
            self._write_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # What the session calls ---------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Write ``data``; waits while the transport's buffer is over its high-water mark. Raises
        ``ConnectionResetError`` once the connection is gone."""
        if self.closed:
            raise ConnectionResetError("connection closed")
        self.transport.write(data)
        waiter = self._write_waiter
        if waiter is not None:
            await asyncio.shield(waiter)

    async def next_line(self, timeout: float | None) -> bytes | None:
        """The next framed line (an AUTHENTICATE continuation), None when the connection ended.
        Raises ``asyncio.TimeoutError`` after ``timeout`` seconds and the queued error of an
        over-limit line."""
        if self.items:
            item = self.items.pop(0)
            self._frame()
        elif self.closed:
            return None
        else:
            self._line_waiter = asyncio.get_running_loop().create_future()
            try:
                item = await asyncio.wait_for(self._line_waiter, timeout)
            finally:
                self._line_waiter = None
        if isinstance(item, ImapError):
            raise item
        return item

    # Framing and scheduling ---------------------------------------------------------------------

    def _frame(self) -> None:
        """Move whole commands from the framer to the queue (at most ``max_pipelined``); pause or
        resume reading to match."""
        limits = self.ctx.limits
        authenticated = self.session is not None and self.session.authenticated
        frame = self.server.frame_limits[authenticated]
        while not self.framing_stopped and len(self.items) < limits.max_pipelined:
            try:
                command = self.framer.pop(frame, self.transport.write)
            except CloseConnection as exc:
                exc.tag_hint = closing_tag(exc)  # type: ignore[attr-defined]
                self.items.append(exc)
                self.framing_stopped = True  # nothing after it is read
                break
            if command is None:
                break
            self.items.append(command)
        if self._line_waiter is not None and self.items and not self._line_waiter.done():
            self._line_waiter.set_result(self.items.pop(0))
        full = len(self.items) >= limits.max_pipelined
        if full and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True
        elif not full and self.reading_paused and not self.closed:
            self.transport.resume_reading()
            self.reading_paused = False

    def _kick(self) -> None:
        """Start the one task this connection may run, if there is work; else wait (with a timer)."""
        if self.task is not None or self.closed:
            return
        if self.items:
            if self.idle_tag is None:
                self._cancel_timer()
            self.task = asyncio.get_running_loop().create_task(self._run_queue())
        elif self.idle_tag is not None and self.push_pending:
            self.task = asyncio.get_running_loop().create_task(self._push())
        elif self.idle_tag is None:
            self._arm_inactivity()

    def _changed(self) -> None:
        # Noted even outside IDLE: a change that lands while IDLE is starting is pushed right after.
        self.push_pending = True
        if self.idle_tag is not None:
            self._kick()

    async def _run_queue(self) -> None:
        try:
            while self.items and not self.closed:
                item = self.items.pop(0)
                self._frame()
                if isinstance(item, CloseConnection):
                    await self.send(item.render(getattr(item, "tag_hint", None)))
                    self._close()
                elif self.idle_tag is not None:
                    tag, self.idle_tag = self.idle_tag, None
                    self._cancel_timer()
                    await self._answer(tag, self.session.end_idle(item))
                elif not await self._one(item):
                    self._close()
        except (ConnectionError, ssl.SSLError, OSError):
            self._close()
        finally:
            self._task_done()

    async def _push(self) -> None:
        """Push what changed to the client in IDLE (RFC 2177), or end a revoked session."""
        try:
            while self.push_pending and self.idle_tag is not None and not self.items and not self.closed:
                self.push_pending = False
                if self.session.revoked:
                    await self.send(REVOKED)
                    self._close()
                    return
                await self.session.flush_updates()
        except (ConnectionError, ssl.SSLError, OSError):
            self._close()
        except Exception:  # noqa: BLE001 - never a traceback to the client; IDLE goes on
            log.exception("imap.idle_push_failed")
        finally:
            self._task_done()

    def _task_done(self) -> None:
        self.task = None
        if self.closed:
            self._release()
        else:
            self._kick()

    async def _one(self, raw: bytes) -> bool:
        """Parse and run one command; False when the connection must close."""
        try:
            cmd = parse_command(raw)
        except UntaggedBad as exc:
            await self.send(exc.render(None))
            return True
        except ImapError as exc:
            await self.send(exc.render(tag_of(raw)))
            return True
        keep = await self._answer(cmd.tag, self.session.execute(cmd), command=cmd.name)
        if keep and self.session.logged_out:
            return False
        return keep

    async def _answer(self, tag: bytes, running, command: str = "IDLE") -> bool:
        """Await a session coroutine and write its tagged answer; False when the connection must close."""
        try:
            done = await running
        except CloseConnection as exc:
            await self.send(exc.render(tag))
            return False
        except ImapError as exc:
            await self.send(exc.render(tag))
            return True
        except asyncio.TimeoutError:
            await self.send(AUTOLOGOUT)
            return False
        except BlobError as exc:
            log.error("imap.blob_error", extra={"kv": {"error": str(exc)}})
            await self.send(CommandRefused("message content is temporarily unavailable; try again",
                                           "UNAVAILABLE").render(tag))
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            raise
        except Exception:  # noqa: BLE001 - a client never sees a traceback
            log.exception("imap.command_failed", extra={"kv": {"command": command}})
            await self.send(CommandRefused("internal error; the problem was logged", "SERVERBUG").render(tag))
            return True
        if done is IDLING:
            self.idle_tag = tag
            self._arm(self.ctx.limits.idle_timeout_s, IDLE_TIMEOUT)
            return True
        await self.send(done.render(tag))
        return True

    # Timers and closing -------------------------------------------------------------------------

    def _arm_inactivity(self) -> None:
        limits = self.ctx.limits
        authenticated = self.session is not None and self.session.authenticated
        self._arm(limits.autologout_s if authenticated else limits.preauth_timeout_s, AUTOLOGOUT)

    def _arm(self, seconds: float, farewell: bytes) -> None:
        self._cancel_timer()
        self.timer = asyncio.get_running_loop().call_later(seconds, self._expire, farewell)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self, farewell: bytes) -> None:
        self.timer = None
        if not self.closed:
            self.transport.write(farewell)
            self._close()

    def shutdown(self, farewell: bytes) -> None:
        """Say ``farewell`` and close (server shutdown)."""
        if not self.closed:
            self.transport.write(farewell)
            self._close()
        if self.task is not None:
            self.task.cancel()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cancel_timer()
            self.transport.close()  # buffered responses are written first
        if self.task is None:
            self._release()

    def _release(self) -> None:
        if self.released:
            return
        self.released = True
        self._cancel_timer()
        self.session.release()
        self.server.connections.discard(self)
        self.ctx.sessions.discard(self.session)


__all__ = ["ImapConnection"]
