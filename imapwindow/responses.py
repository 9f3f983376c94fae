"""Response building blocks (RFC 3501 §7, §9): strings, flag lists, dates, capabilities."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from store.imap import ANSWERED, FLAGGED, SEEN

_QUOTABLE_RE = re.compile(rb'[\x01-\x09\x0b\x0c\x0e-\x7f]*')
MAX_QUOTED = 1024
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

CAPABILITIES_BASE = ("IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "IDLE", "NAMESPACE", "UNSELECT", "UIDPLUS",
                     "MOVE", "CHILDREN", "SPECIAL-USE", "ENABLE", "CONDSTORE", "LIST-EXTENDED", "LIST-STATUS",
                     "ESEARCH")
CAPABILITIES_PREAUTH = CAPABILITIES_BASE[:1] + ("AUTH=PLAIN",) + CAPABILITIES_BASE[1:]


def capability_text(authenticated: bool) -> str:
    """The CAPABILITY list (``AUTH=PLAIN`` only before login, RFC 3501 §6.2.2)."""
    return " ".join(CAPABILITIES_BASE if authenticated else CAPABILITIES_PREAUTH)


def astring_out(value: str | bytes) -> bytes:
    """A string as quoted when it can be, else as a literal (RFC 3501 §4.3)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) <= MAX_QUOTED and _QUOTABLE_RE.fullmatch(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def nstring_out(value: str | bytes | None) -> bytes:
    """``NIL`` or a string."""
    return b"NIL" if value is None else astring_out(value)


def literal_out(data: bytes) -> bytes:
    """Always a literal (message content: RFC 3501 §7.4.2 BODY[])."""
    return b"{%d}\r\n" % len(data) + data


def mailbox_out(name: str) -> bytes:
    """A mailbox name: an atom when safe (``INBOX``, ``Sent``), else quoted."""
    if re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
        return name.encode()
    return astring_out(name)


def flag_names(bits: int, session_flags: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Flag names from persisted bits plus session-only flags, in a stable order."""
    out = []
    if bits & ANSWERED:
        out.append("\\Answered")
    if bits & FLAGGED:
        out.append("\\Flagged")
    if bits & SEEN:
        out.append("\\Seen")
    out.extend(sorted(session_flags))
    return out


def flags_out(bits: int, session_flags: frozenset[str] | set[str] = frozenset()) -> bytes:
    """``(\\Seen \\Flagged)``."""
    return b"(" + " ".join(flag_names(bits, session_flags)).encode() + b")"


def internaldate_out(value: datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 +0000"`` (RFC 3501 §9 date-time), in UTC."""
    v = value.astimezone(timezone.utc)
    return f'"{v.day:2d}-{_MONTHS[v.month - 1]}-{v.year:04d} {v.hour:02d}:{v.minute:02d}:{v.second:02d} +0000"'.encode()
