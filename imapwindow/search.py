"""SEARCH evaluation (RFC 3501 §6.4.4; RFC 7162 §3.1.5 MODSEQ).

:func:`needs` tells the session what a criteria tree reads, so ``SEARCH UNSEEN`` is answered from the
shared view alone (flags in memory), dates and sizes from one metadata query, header keys from the
stored header blocks, and only BODY/TEXT read message blobs. :func:`matches` is pure.

Matching follows Dovecot: strings match as case-insensitive substrings of the decoded field text
(RFC 2047 encoded words decoded, folding removed) or of the decoded body text (transfer encoding
and charset undone); dates compare the date only (internal date in UTC, Date: in its own zone).
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from datetime import date
from email.header import decode_header, make_header
from email.utils import parsedate_tz
from typing import Any

from imapwindow.fetch import FetchData
from imapwindow.parsing.search import Key
from imapwindow.sections import split_header
from store.imap import ANSWERED, FLAGGED, SEEN

_FLAG_BITS = {"\\Seen": SEEN, "\\Flagged": FLAGGED, "\\Answered": ANSWERED}
MAX_BODY_SCAN = 20 * 1024 * 1024


@dataclass(frozen=True)
class SearchNeeds:
    meta: bool
    headers: bool
    raw: bool


def needs(key: Key) -> SearchNeeds:
    kinds: set[str] = set()

    def walk(k: Key) -> None:
        kinds.add(k.kind if k.kind != "date" else f"date:{k.args[0]}")
        if k.kind in ("and", "or", "not"):
            for sub in k.args:
                walk(sub)

    walk(key)
    raw = bool(kinds & {"body", "text"})
    headers = bool(kinds & {"header", "date:sent"}) or raw
    meta = bool(kinds & {"date:internal", "size"}) or headers
    return SearchNeeds(meta, headers, raw)


@dataclass
class Candidate(FetchData):
    """One message as SEARCH sees it: what FETCH reads, plus the header block and parsed caches."""

    header: bytes | None = None
    _fields: dict[str, list[str]] | None = None
    _body_text: str | None = None

    def field_values(self, name: str) -> list[str]:
        if self._fields is None:
            self._fields = _parse_fields(self.header or b"")
        return self._fields.get(name.lower(), [])

    def body_text(self) -> str:
        if self._body_text is None:
            self._body_text = _decoded_body(self.raw or b"")
        return self._body_text


def matches(key: Key, c: Candidate, *, largest_seq: int, largest_uid: int) -> bool:
    """Whether candidate ``c`` satisfies ``key``."""
    kind = key.kind
    a = key.args
    if kind == "all":
        return True
    if kind == "and":
        return all(matches(k, c, largest_seq=largest_seq, largest_uid=largest_uid) for k in a)
    if kind == "or":
        return (matches(a[0], c, largest_seq=largest_seq, largest_uid=largest_uid)
                or matches(a[1], c, largest_seq=largest_seq, largest_uid=largest_uid))
    if kind == "not":
        return not matches(a[0], c, largest_seq=largest_seq, largest_uid=largest_uid)
    if kind == "flag":
        name, wanted = a
        bit = _FLAG_BITS.get(name)
        present = bool(c.flags & bit) if bit else name in c.session_flags
        return present == wanted
    if kind == "keyword":
        return (a[0] in c.session_flags) == a[1]
    if kind == "seq":
        return a[0].contains(c.seq, largest_seq)
    if kind == "uid":
        return a[0].contains(c.uid, largest_uid)
    if kind == "modseq":
        return c.modseq >= a[0]
    if kind == "size":
        op, n = a
        return c.meta.size > n if op == ">" else c.meta.size < n
    if kind == "date":
        field, op, when = a
        day = _internal_day(c) if field == "internal" else _sent_day(c)
        if day is None:
            return False
        return day < when if op == "<" else (day == when if op == "=" else day >= when)
    if kind == "header":
        name, needle = a
        values = c.field_values(name)
        if not values:
            return False
        n = needle.casefold()
        return any(n in v.casefold() for v in values)
    if kind == "body":
        return a[0].casefold() in c.body_text().casefold()
    if kind == "text":
        n = a[0].casefold()
        if any(n in v.casefold() for vs in _all_fields(c).values() for v in vs):
            return True
        return n in c.body_text().casefold()
    raise ValueError(f"unknown search key {kind}")


def _all_fields(c: Candidate) -> dict[str, list[str]]:
    c.field_values("")
    return c._fields or {}


def _internal_day(c: Candidate) -> date | None:
    return c.meta.received_at.date() if c.meta else None


def _sent_day(c: Candidate) -> date | None:
    values = c.field_values("date")
    if values:
        parsed = parsedate_tz(values[0])
        if parsed:
            try:
                return date(parsed[0], parsed[1], parsed[2])
            except ValueError:
                pass
    if c.meta is not None and c.meta.date is not None:
        return c.meta.date.date()
    return None


def _decode(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - malformed encoded words: match the raw text
        return value


def _parse_fields(block: bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    text = block.decode("utf-8", "replace")
    name = None
    value_lines: list[str] = []

    def flush() -> None:
        if name is not None:
            out.setdefault(name.lower(), []).append(_decode(" ".join(s.strip() for s in value_lines)))

    for line in text.splitlines():
        if not line:
            break
        if line[:1] in (" ", "\t") and name is not None:
            value_lines.append(line)
            continue
        flush()
        head, sep, rest = line.partition(":")
        name, value_lines = (head.strip(), [rest]) if sep else (None, [])
    flush()
    return out


def _decoded_body(raw: bytes) -> str:
    """The message's text: each non-multipart part transfer-decoded and charset-decoded."""
    raw = raw[:MAX_BODY_SCAN]
    try:
        # The default policy is compat32 (lenient, fast); importing email.policy for it would load
        # headerregistry and friends (~1.5 MB) into the long-lived IMAP process.
        msg = email.message_from_bytes(raw)
        texts: list[str] = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                texts.append(payload.decode(charset, "replace"))
            except LookupError:
                texts.append(payload.decode("utf-8", "replace"))
        # Also the undecoded body: headers of attached messages, text in parts the walk skipped.
        texts.append(raw[split_header(raw):].decode("utf-8", "replace"))
        return "\n".join(texts)
    except Exception:  # noqa: BLE001 - broken MIME: search the raw body text
        return raw[split_header(raw):].decode("utf-8", "replace")


def header_of(structure: Any, raw: bytes | None) -> bytes:
    """The top-level header block from the stored structure (or the raw message)."""
    if structure is not None:
        return structure.header_block
    return raw[:split_header(raw)] if raw else b""


def uses_modseq(key: Key) -> bool:
    """True when the criteria include MODSEQ (the SEARCH response then carries ``(MODSEQ n)``)."""
    if key.kind == "modseq":
        return True
    if key.kind in ("and", "or", "not"):
        return any(uses_modseq(k) for k in key.args)
    return False


def compile_in_memory(key: Key, view_flags, view_uids, view_modseqs, session_flags: dict[int, set[str]],
                      largest_seq: int, largest_uid: int):
    """A predicate ``pred(index) -> bool`` over the view's arrays for criteria that read only flags,
    numbers and mod-sequences (``SEARCH UNSEEN`` on 10,000 messages without building a candidate
    per message), or None when the criteria need message data."""
    kind = key.kind
    a = key.args
    if kind == "all":
        return lambda i: True
    if kind in ("and", "or", "not"):
        subs = [compile_in_memory(k, view_flags, view_uids, view_modseqs, session_flags, largest_seq, largest_uid)
                for k in a]
        if any(s is None for s in subs):
            return None
        if kind == "not":
            inner = subs[0]
            return lambda i: not inner(i)
        if kind == "or":
            left, right = subs
            return lambda i: left(i) or right(i)
        return lambda i: all(s(i) for s in subs)
    if kind == "flag":
        name, wanted = a
        bit = _FLAG_BITS.get(name)
        if bit:
            return (lambda i: bool(view_flags[i] & bit)) if wanted else (lambda i: not view_flags[i] & bit)
        return lambda i: (name in session_flags.get(view_uids[i], ())) == wanted
    if kind == "keyword":
        kw, wanted = a
        return lambda i: (kw in session_flags.get(view_uids[i], ())) == wanted
    if kind == "seq":
        ranges = a[0].resolve(largest_seq)
        return lambda i: any(lo <= i + 1 <= hi for lo, hi in ranges)
    if kind == "uid":
        ranges = a[0].resolve(largest_uid)
        return lambda i: any(lo <= view_uids[i] <= hi for lo, hi in ranges)
    if kind == "modseq":
        floor = a[0]
        return lambda i: view_modseqs[i] >= floor
    return None
