"""The IMAP window's exceptions; each renders its own response (the pymap habit).

- :class:`ImapError`: base; ``render(tag)`` gives the response bytes.
  - :class:`BadCommand`: ``tag BAD [code] text`` (syntax errors, commands not allowed in this state,
    over-limit input). ``tag`` None renders ``* BAD`` (no tag could be read).
  - :class:`CommandRefused`: ``tag NO [code] text`` (well-formed but refused: ``[CANNOT]``,
    ``[AUTHENTICATIONFAILED]``, ``[NONEXISTENT]``, ``[TRYCREATE]``, ``[LIMIT]``…; RFC 5530 codes).
  - :class:`CloseConnection`: ``* BYE text`` then the connection is closed (limits, revoked
    credentials, timeouts); a tagged response is written first when ``tag_text`` is given.
"""

from __future__ import annotations


class ImapError(Exception):
    """Base class: an error that knows how to answer the client."""

    status = b"BAD"

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code

    def render(self, tag: bytes | None) -> bytes:
        """The response line (CRLF-terminated) for ``tag`` (``*`` when None)."""
        code = f"[{self.code}] " if self.code else ""
        return (tag or b"*") + b" " + self.status + b" " + f"{code}{self.text}".encode() + b"\r\n"


class BadCommand(ImapError):
    """``BAD``: the command is malformed, unknown, not valid now, or over a limit (RFC 3501 §7.1.3)."""

    status = b"BAD"


class CommandRefused(ImapError):
    """``NO``: the command was understood and refused (RFC 3501 §7.1.2, codes from RFC 5530)."""

    status = b"NO"


class CloseConnection(ImapError):
    """``* BYE``: the server closes the connection (RFC 3501 §7.1.5). ``tagged`` (a BadCommand or
    CommandRefused) is written before the BYE when the closing command should get its own answer."""

    status = b"BYE"

    def __init__(self, text: str, code: str | None = None, *, tagged: ImapError | None = None) -> None:
        super().__init__(text, code)
        self.tagged = tagged

    def render(self, tag: bytes | None) -> bytes:
        first = self.tagged.render(tag) if self.tagged is not None and tag else b""
        code = f"[{self.code}] " if self.code else ""
        return first + b"* BYE " + f"{code}{self.text}".encode() + b"\r\n"
