"""SEARCH criteria (RFC 3501 §6.4.4 and §9 ``search-key``; RFC 7162 ``MODSEQ``).

The result is a small tree of :class:`Key` values; :mod:`imapwindow.search` evaluates it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from imapwindow.errors import BadCommand, CommandRefused
from imapwindow.parsing.primitives import astring, flag, imap_date, number, sp
from imapwindow.parsing.sequence import SequenceSet, parse_sequence_set

MAX_DEPTH = 32
MAX_KEYS = 500
CHARSETS = ("UTF-8", "US-ASCII")
_WORD_RE = re.compile(rb"[A-Za-z0-9.\-]+")

FLAG_KEYS = {  # key -> (flag, wanted)
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "RECENT": ("\\Recent", True), "OLD": ("\\Recent", False),
}
DATE_KEYS = {"BEFORE": ("internal", "<"), "ON": ("internal", "="), "SINCE": ("internal", ">="),
             "SENTBEFORE": ("sent", "<"), "SENTON": ("sent", "="), "SENTSINCE": ("sent", ">=")}
ADDRESS_KEYS = ("BCC", "CC", "FROM", "SUBJECT", "TO")


@dataclass(frozen=True)
class Key:
    """One node: ``kind`` in all, and, or, not, flag, keyword, date, size, header, body, text, seq,
    uid, modseq, new; ``args`` as the kind needs (see :func:`parse_search`)."""

    kind: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class SearchRequest:
    """The criteria (an ``and`` of the top-level keys) and the charset named (UTF-8 when absent)."""

    key: Key
    charset: str = "UTF-8"


def parse_search(buf: bytes) -> tuple[SearchRequest, bytes]:
    """``[CHARSET SP astring SP] search-key *(SP search-key)``; unknown charsets raise
    ``NO [BADCHARSET (UTF-8 US-ASCII)]`` (RFC 3501 §6.4.4)."""
    charset = "UTF-8"
    m = re.match(rb"CHARSET ", buf, re.I)
    if m:
        raw, buf = astring(buf[m.end():])
        charset = raw.decode("ascii", "replace").upper()
        if charset not in CHARSETS:
            raise CommandRefused(f"charset {charset} is not supported", "BADCHARSET (UTF-8 US-ASCII)")
        buf = sp(buf)
    counter = [0]
    keys = []
    while True:
        key, buf = _key(buf, charset, 0, counter)
        keys.append(key)
        if not buf:
            break
        buf = sp(buf)
    return SearchRequest(keys[0] if len(keys) == 1 else Key("and", tuple(keys)), charset), buf


def _text(buf: bytes, charset: str) -> tuple[str, bytes]:
    raw, rest = astring(buf)
    try:
        return raw.decode("utf-8" if charset == "UTF-8" else "ascii"), rest
    except UnicodeDecodeError:
        raise BadCommand(f"search string is not valid {charset}") from None


def _key(buf: bytes, charset: str, depth: int, counter: list[int]) -> tuple[Key, bytes]:
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_KEYS:
        raise BadCommand("search criteria too complex", "LIMIT")
    if buf[:1] == b"(":
        buf = buf[1:]
        keys = []
        while True:
            key, buf = _key(buf, charset, depth + 1, counter)
            keys.append(key)
            if buf[:1] == b")":
                return (keys[0] if len(keys) == 1 else Key("and", tuple(keys))), buf[1:]
            buf = sp(buf)
    if buf[:1].isdigit() or buf[:1] == b"*":
        seq, buf = parse_sequence_set(buf)
        return Key("seq", (seq,)), buf
    m = _WORD_RE.match(buf)
    if not m:
        raise BadCommand("expected a search key" + (f" near {buf[:20]!r}" if buf else ""))
    word = m.group().decode().upper()
    buf = buf[m.end():]
    if word == "ALL":
        return Key("all"), buf
    if word == "NEW":
        return Key("and", (Key("flag", ("\\Recent", True)), Key("flag", ("\\Seen", False)))), buf
    if word in FLAG_KEYS:
        return Key("flag", FLAG_KEYS[word]), buf
    if word in ("KEYWORD", "UNKEYWORD"):
        kw, buf = flag(sp(buf))
        return Key("keyword", (kw, word == "KEYWORD")), buf
    if word in DATE_KEYS:
        when, buf = imap_date(sp(buf))
        field, op = DATE_KEYS[word]
        return Key("date", (field, op, when)), buf
    if word in ("LARGER", "SMALLER"):
        n, buf = number(sp(buf))
        return Key("size", (">" if word == "LARGER" else "<", n)), buf
    if word in ADDRESS_KEYS:
        value, buf = _text(sp(buf), charset)
        return Key("header", (word.capitalize() if word != "BCC" else "Bcc", value)), buf
    if word == "HEADER":
        name, buf = _text(sp(buf), charset)
        value, buf = _text(sp(buf), charset)
        return Key("header", (name, value)), buf
    if word in ("BODY", "TEXT"):
        value, buf = _text(sp(buf), charset)
        return Key(word.lower(), (value,)), buf
    if word == "NOT":
        inner, buf = _key(sp(buf), charset, depth + 1, counter)
        return Key("not", (inner,)), buf
    if word == "OR":
        a, buf = _key(sp(buf), charset, depth + 1, counter)
        b, buf = _key(sp(buf), charset, depth + 1, counter)
        return Key("or", (a, b)), buf
    if word == "UID":
        seq, buf = parse_sequence_set(sp(buf))
        return Key("uid", (seq,)), buf
    if word == "MODSEQ":
        buf = sp(buf)
        if buf[:1] == b'"':  # RFC 7162 §3.1.5: entry-name and entry-type-req, then the number
            _, buf = astring(buf)
            m = re.match(rb" (priv|shared|all) ", buf, re.I)
            if not m:
                raise BadCommand("bad MODSEQ entry type")
            buf = buf[m.end():]
        n, buf = number(buf)
        return Key("modseq", (n,)), buf
    raise BadCommand(f"unknown search key {word}")


def uses(key: Key, kinds: set[str]) -> bool:
    """True when ``key`` or any key inside it has one of ``kinds``."""
    if key.kind in kinds:
        return True
    if key.kind in ("and",):
        return any(uses(k, kinds) for k in key.args)
    if key.kind in ("or", "not"):
        return any(uses(k, kinds) for k in key.args)
    return False


__all__ = ["Key", "SearchRequest", "SequenceSet", "date", "parse_search", "uses"]
