"""Reading whole commands off the wire: a line, and each literal it announces (RFC 3501 §4.3,
RFC 7888 LITERAL+), within limits.

:func:`read_command` returns the command's bytes with literals inline as ``{n}\\r\\n<n octets>``
(``{n+}`` normalised to ``{n}``) and no final CRLF, ready for :mod:`imapwindow.parsing`.
Over-limit input raises :class:`imapwindow.errors.ImapError` values that say what to answer:

- a line longer than ``max_line`` → ``* BAD`` / ``BYE`` (the stream cannot be re-synchronised);
- a synchronising literal over the limit → ``tag BAD [TOOBIG]``; the client never sends it;
- a non-synchronising literal over the limit → ``tag BAD [TOOBIG]`` then ``BYE`` (RFC 7888 §4).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

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


class SkipCommand(Exception):
    """The command was answered while framing (a refused literal); read the next one."""


def tag_of(line: bytes) -> bytes | None:
    """The tag at the start of a (partial) command line, if one can be read."""
    m = _TAG.match(line)
    return m.group(1) if m else None


async def read_command(reader: asyncio.StreamReader, limits: FrameLimits,
                       send: Callable[[bytes], Awaitable[None]]) -> bytes | None:
    """One whole command, or None at end of stream. ``send`` writes continuation/refusal lines.

    Raises :class:`CloseConnection` for input that ends the connection (its ``__cause__`` carries the
    tag, see :func:`closing_tag`) and :class:`SkipCommand` when a command was refused here (its tagged
    answer already sent)."""
    line = await _read_line(reader, limits, first=True)
    if line is None:
        return None
    command = bytearray()
    tag = tag_of(line)
    while True:
        m = _LITERAL_AT_END.search(line)
        if not m:
            command += line
            return bytes(command)
        size, non_sync = int(m.group(1)), bool(m.group(2))
        if size > limits.max_literal or len(command) + len(line) + size > limits.max_total:
            err = BadCommand(f"literal of {size} bytes is over the limit of {limits.max_literal} bytes", "TOOBIG")
            if non_sync:  # RFC 7888 §4: the data is on its way; refuse and close
                raise CloseConnection("too much data", "TOOBIG", tagged=err) from _Tag(tag)
            await send(err.render(tag))
            raise SkipCommand()
        if not non_sync and not command and _APPEND.match(line):
            # Uploads are refused before the client sends the message (DESIGN.md "IMAP window").
            await send((tag or b"*") + b" NO [CANNOT] APPEND is not available: this mailbox is read-only "
                                       b"except for flags\r\n")
            raise SkipCommand()
        if not non_sync:
            await send(b"+ Ready for literal data\r\n")
        try:
            data = await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            raise CloseConnection("connection closed in the middle of a literal") from None
        command += line[:m.start()] + b"{%d}\r\n" % size + data
        line = await _read_line(reader, limits, first=False, tag=tag)
        if line is None:
            raise CloseConnection("connection closed in the middle of a command")


async def _read_line(reader: asyncio.StreamReader, limits: FrameLimits, *, first: bool,
                     tag: bytes | None = None) -> bytes | None:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if first and not exc.partial:
            return None
        raise CloseConnection("connection closed in the middle of a command") from None
    except asyncio.LimitOverrunError:
        if first:
            tag = tag_of(bytes(reader._buffer[:256]))  # noqa: SLF001 - only to answer with the tag
        raise CloseConnection(f"command line longer than {limits.max_line} bytes", "TOOBIG",
                              tagged=BadCommand("command line too long", "TOOBIG")) from _Tag(tag)
    return line[:-2] if line.endswith(b"\r\n") else line[:-1]


class _Tag(Exception):
    """Carries the tag of a command that ends the connection (``raise … from _Tag(tag)``)."""

    def __init__(self, tag: bytes | None) -> None:
        super().__init__()
        self.tag = tag


def closing_tag(exc: CloseConnection) -> bytes | None:
    """The tag a :class:`CloseConnection` raised here belongs to (for its tagged part)."""
    cause = exc.__cause__
    return cause.tag if isinstance(cause, _Tag) else None
