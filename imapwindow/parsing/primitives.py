"""Primitives of the IMAP grammar (RFC 3501 §9): atoms, numbers, strings, lists, flags, dates."""

from __future__ import annotations

import re
from datetime import date, datetime

from imapwindow.errors import BadCommand

MAX_DEPTH = 16
_ATOM_RE = re.compile(rb"[^\x00-\x20\x7f(){%*\"\\\]]+")
_ASTRING_RE = re.compile(rb"[^\x00-\x20\x7f(){%*\"\\]+")          # ASTRING-CHAR: atom chars and "]"
_LIST_MAILBOX_RE = re.compile(rb"[^\x00-\x20\x7f(){\"\\]+")        # list-char: atom chars, % * ]
_NUMBER_RE = re.compile(rb"[0-9]+")
_LITERAL_RE = re.compile(rb"\{([0-9]{1,10})\+?\}\r\n")
_FLAG_RE = re.compile(rb"\\?[^\x00-\x20\x7f(){%*\"\\\]]+")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def sp(buf: bytes) -> bytes:
    """One SP; returns the rest."""
    if buf[:1] != b" ":
        raise BadCommand("expected a space" + _near(buf))
    return buf[1:]


def end(buf: bytes) -> None:
    """Nothing may follow."""
    if buf:
        raise BadCommand("unexpected arguments" + _near(buf))


def _near(buf: bytes) -> str:
    shown = buf[:20].decode("ascii", "replace").replace("\r", " ").replace("\n", " ")
    return f" near {shown!r}" if buf else " at the end of the command"


def atom(buf: bytes) -> tuple[str, bytes]:
    """``atom`` (1*ATOM-CHAR) as ASCII text."""
    m = _ATOM_RE.match(buf)
    if not m:
        raise BadCommand("expected an atom" + _near(buf))
    return m.group().decode("ascii", "replace"), buf[m.end():]


def number(buf: bytes, *, nonzero: bool = False) -> tuple[int, bytes]:
    """``number`` (RFC 3501: 32-bit unsigned; RFC 7162 mod-sequences: 63-bit)."""
    m = _NUMBER_RE.match(buf)
    if not m or len(m.group()) > 19:
        raise BadCommand("expected a number" + _near(buf))
    value = int(m.group())
    if nonzero and value == 0:
        raise BadCommand("expected a non-zero number")
    return value, buf[m.end():]


def quoted(buf: bytes) -> tuple[bytes, bytes]:
    """``quoted``: DQUOTE *QUOTED-CHAR DQUOTE with ``\\"`` and ``\\\\`` escapes (8-bit tolerated)."""
    if buf[:1] != b'"':
        raise BadCommand("expected a quoted string" + _near(buf))
    out = bytearray()
    i = 1
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == 0x22:
            return bytes(out), buf[i + 1:]
        if c == 0x5C:
            if i + 1 < n and buf[i + 1] in (0x22, 0x5C):
                out.append(buf[i + 1])
                i += 2
                continue
            raise BadCommand("bad escape in a quoted string")
        if c in (0x0D, 0x0A, 0x00):
            raise BadCommand("CR, LF or NUL in a quoted string")
        out.append(c)
        i += 1
    raise BadCommand("unterminated quoted string")


def literal(buf: bytes) -> tuple[bytes, bytes]:
    """``literal``: ``{n}`` CRLF n octets (``{n+}``, RFC 7888, arrives normalised the same way)."""
    m = _LITERAL_RE.match(buf)
    if not m:
        raise BadCommand("expected a literal" + _near(buf))
    size = int(m.group(1))
    start = m.end()
    if len(buf) - start < size:
        raise BadCommand("truncated literal")
    return buf[start:start + size], buf[start + size:]


def string(buf: bytes) -> tuple[bytes, bytes]:
    """``string`` = quoted / literal."""
    if buf[:1] == b'"':
        return quoted(buf)
    if buf[:1] == b"{":
        return literal(buf)
    raise BadCommand("expected a string" + _near(buf))


def astring(buf: bytes) -> tuple[bytes, bytes]:
    """``astring`` = 1*ASTRING-CHAR / string."""
    if buf[:1] in (b'"', b"{"):
        return string(buf)
    m = _ASTRING_RE.match(buf)
    if not m:
        raise BadCommand("expected a string" + _near(buf))
    return m.group(), buf[m.end():]


def nstring(buf: bytes) -> tuple[bytes | None, bytes]:
    """``nstring`` = string / NIL."""
    if buf[:3].upper() == b"NIL" and (len(buf) == 3 or buf[3:4] in b" )"):
        return None, buf[3:]
    return string(buf)


def mailbox(buf: bytes) -> tuple[str, bytes]:
    """``mailbox``: an astring; ``INBOX`` in any case means INBOX (RFC 3501 §5.1). Names are
    decoded as UTF-8 (RFC 3501's modified UTF-7 names are ASCII, so they pass unchanged)."""
    raw, rest = astring(buf)
    name = raw.decode("utf-8", "replace")
    return ("INBOX" if name.upper() == "INBOX" else name), rest


def list_mailbox(buf: bytes) -> tuple[str, bytes]:
    """``list-mailbox`` = 1*list-char / string (wildcards ``*`` and ``%`` allowed)."""
    if buf[:1] in (b'"', b"{"):
        raw, rest = string(buf)
        return raw.decode("utf-8", "replace"), rest
    m = _LIST_MAILBOX_RE.match(buf)
    if not m:
        raise BadCommand("expected a mailbox pattern" + _near(buf))
    return m.group().decode("utf-8", "replace"), buf[m.end():]


def paren_list(buf: bytes, item) -> tuple[list, bytes]:
    """``"(" [item *(SP item)] ")"`` with ``item(buf) -> (value, rest)``."""
    if buf[:1] != b"(":
        raise BadCommand("expected '('" + _near(buf))
    buf = buf[1:]
    out = []
    if buf[:1] == b")":
        return out, buf[1:]
    while True:
        value, buf = item(buf)
        out.append(value)
        if buf[:1] == b")":
            return out, buf[1:]
        buf = sp(buf)


def flag(buf: bytes) -> tuple[str, bytes]:
    """``flag``: ``\\Seen``… or a keyword atom; system flags are returned in their canonical case."""
    m = _FLAG_RE.match(buf)
    if not m:
        raise BadCommand("expected a flag" + _near(buf))
    text = m.group().decode("ascii", "replace")
    return canonical_flag(text), buf[m.end():]


SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
_SYSTEM_BY_LOWER = {f.lower(): f for f in SYSTEM_FLAGS}


def canonical_flag(text: str) -> str:
    """``\\SEEN`` → ``\\Seen``; keywords unchanged. Unknown ``\\`` flags are a syntax error."""
    if text.startswith("\\"):
        canonical = _SYSTEM_BY_LOWER.get(text.lower())
        if canonical is None:
            raise BadCommand(f"unknown system flag {text}")
        return canonical
    return text


def flag_list(buf: bytes) -> tuple[list[str], bytes]:
    """``flag-list`` = "(" [flag *(SP flag)] ")"."""
    return paren_list(buf, flag)


def imap_date(buf: bytes) -> tuple[date, bytes]:
    """``date`` = date-text / DQUOTE date-text DQUOTE, date-text = d[d]-Mon-yyyy (RFC 3501 §9)."""
    if buf[:1] == b'"':
        raw, rest = quoted(buf)
    else:
        m = re.match(rb"[0-9A-Za-z-]+", buf)
        if not m:
            raise BadCommand("expected a date like 1-Feb-2026" + _near(buf))
        raw, rest = m.group(), buf[m.end():]
    m = re.fullmatch(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})", raw)
    if not m or m.group(2).lower().decode() not in _MONTHS:
        raise BadCommand(f"expected a date like 1-Feb-2026, got {raw.decode('ascii', 'replace')!r}")
    try:
        return date(int(m.group(3)), _MONTHS[m.group(2).lower().decode()], int(m.group(1))), rest
    except ValueError:
        raise BadCommand(f"no such date {raw.decode('ascii', 'replace')!r}") from None


def date_time(buf: bytes) -> tuple[datetime, bytes]:
    """``date-time`` (APPEND's): accepted only to be skipped; parsed loosely."""
    raw, rest = quoted(buf)
    try:
        return datetime.strptime(raw.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z"), rest
    except ValueError:
        raise BadCommand("bad date-time") from None
