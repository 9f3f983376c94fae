"""Reading whole commands off the wire: a line, and each literal it announces (RFC 3501 §4.3,
RFC 7888 LITERAL+), within limits.

:meth:`CommandFramer.pop` returns each command's bytes with literals inline as ``{n}\\r\\n<n octets>``
(``{n+}`` normalised to ``{n}``) and no final CRLF, ready for :mod:`imapwindow.parsing`.
Over-limit input raises :class:`imapwindow.errors.ImapError` values that say what to answer:

- a line longer than ``max_line`` → ``* BAD`` / ``BYE`` (the stream cannot be re-synchronised);
- a synchronising literal over the limit → ``tag BAD [TOOBIG]``; the client never sends it;
- a non-synchronising literal over the limit → ``tag BAD [TOOBIG]`` then ``BYE`` (RFC 7888 §4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from imapwindow.errors import BadCommand, CloseConnection

_LITERAL_AT_END = re.compile(rb"\{([0-9]{1,10})(\+?)\}$")
_TAG = re.compile(rb"^([^\x00-\x20\x7f(){%*\"\\+]+)(?: |$)")
_APPEND = re.compile(rb"^[^ ]+ APPEND ", re.I)


@dataclass(frozen=True)
class FrameLimits:
    """``max_line`` bytes per line, ``max_literal`` bytes per literal, ``max_total`` bytes per command."""

    max_line: int
    max_literal: int
    max_total: int


def tag_of(line: bytes) -> bytes | None:
    """The tag at the start of a (partial) command line, if one can be read."""
    m = _TAG.match(line)
    return m.group(1) if m else None


class CommandFramer:
    """Incremental framing, for a protocol that is handed bytes as they arrive (no task, no stream):
    :meth:`feed` what was received, then :meth:`pop` commands until it returns None.

    State between calls: the unread bytes, the command being assembled across its literals, and how
    many literal octets are still due."""

    __slots__ = ("_buf", "_command", "_tag", "_literal")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._command: bytearray | None = None  # set while a command continues past a literal
        self._tag: bytes | None = None
        self._literal = 0                       # literal octets still to come

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        self._buf += data

    def pop(self, limits: FrameLimits, send: Callable[[bytes], object]) -> bytes | None:
        """The next whole command (literals inline as ``{n}\r\n<n octets>``, no final CRLF), or None
        until more bytes arrive. ``send`` writes continuation requests and refusals at once.

        Raises :class:`CloseConnection` for input that ends the connection (its tag, if one could be
        read, via :func:`closing_tag`). A refused synchronising literal or APPEND is answered here and
        framing goes on with the next command."""
        buf = self._buf
        while True:
            if self._literal:
                if len(buf) < self._literal:
                    return None
                self._command += buf[:self._literal]
                del buf[:self._literal]
                self._literal = 0
            first = self._command is None
            nl = buf.find(b"\n")
            if nl > limits.max_line or (nl < 0 and len(buf) > limits.max_line):
                # A line over the limit: the stream cannot be re-synchronised.
                tag = tag_of(bytes(buf[:256])) if first else self._tag
                raise CloseConnection(f"command line longer than {limits.max_line} bytes", "TOOBIG",
                                      tagged=BadCommand("command line too long", "TOOBIG")) from _Tag(tag)
            if nl < 0:
                return None
            line = bytes(buf[:nl - 1] if nl and buf[nl - 1] == 0x0D else buf[:nl])
            del buf[:nl + 1]
            if first:
                self._tag = tag_of(line)
                self._command = bytearray()
            tag = self._tag
            m = _LITERAL_AT_END.search(line)
            if not m:
                command = bytes(self._command + line)
                self._command = None
                return command
            size, non_sync = int(m.group(1)), bool(m.group(2))
            if size > limits.max_literal or len(self._command) + len(line) + size > limits.max_total:
                self._command = None
                err = BadCommand(f"literal of {size} bytes is over the limit of {limits.max_literal} bytes", "TOOBIG")
                if non_sync:  # RFC 7888 §4: the data is on its way; refuse and close
                    raise CloseConnection("too much data", "TOOBIG", tagged=err) from _Tag(tag)
                send(err.render(tag))
                continue
            if not non_sync and first and _APPEND.match(line):
                # Uploads are refused before the client sends the message (DESIGN.md "IMAP window").
                self._command = None
                send((tag or b"*") + b" NO [CANNOT] APPEND is not available: this mailbox is read-only "
                                     b"except for flags\r\n")
                continue
            if not non_sync:
                send(b"+ Ready for literal data\r\n")  # RFC 3501 §7.5
            self._command += line[:m.start()] + b"{%d}\r\n" % size
            self._literal = size


class _Tag(Exception):
    """Carries the tag of a command that ends the connection (``raise … from _Tag(tag)``)."""

    def __init__(self, tag: bytes | None) -> None:
        super().__init__()
        self.tag = tag


def closing_tag(exc: CloseConnection) -> bytes | None:
    """The tag a :class:`CloseConnection` raised here belongs to (for its tagged part)."""
    cause = exc.__cause__
    return cause.tag if isinstance(cause, _Tag) else None
