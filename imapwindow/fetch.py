"""FETCH responses (RFC 3501 §6.4.5, §7.4.2; RFC 7162 §3.1.4 MODSEQ).

:func:`needs` says what a request reads (row metadata, the stored structure, the raw blob);
:func:`render` turns one message's data into its ``* n FETCH (…)`` line. Pure: the session loads
the data (in worker threads, in batches) and writes the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imapwindow.parsing.fetch import BodySection, FetchRequest
from imapwindow.responses import flags_out, internaldate_out, literal_out
from imapwindow.sections import split_header
from parser.imap_structure import header_fields, wire_text
from store.imap import MessageMeta

_META_ITEMS = {"INTERNALDATE"}
_STRUCTURE_ITEMS = {"ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.HEADER", "RFC822.SIZE"}
_RAW_ITEMS = {"RFC822", "RFC822.TEXT"}


@dataclass(frozen=True)
class Needs:
    """What rendering a request reads besides the view (UID, flags, mod-sequence)."""

    meta: bool
    structure: bool
    raw: bool
    sets_seen: bool


def needs(request: FetchRequest) -> Needs:
    names = request.names
    sections = [i for i in request.items if isinstance(i, BodySection)]
    raw = bool(names & _RAW_ITEMS) or any(s.part or s.specifier in (None, "TEXT") for s in sections)
    structure = bool(names & _STRUCTURE_ITEMS) or bool(sections)
    meta = bool(names & _META_ITEMS) or structure or raw
    sets_seen = bool(names & {"RFC822", "RFC822.TEXT"}) or any(not s.peek for s in sections)
    return Needs(meta, structure, raw, sets_seen)


@dataclass
class FetchData:
    """One message's data for rendering; ``structure`` is a ``parser.imap_structure.ImapStructure``."""

    seq: int
    uid: int
    flags: int
    session_flags: frozenset[str]
    modseq: int
    meta: MessageMeta | None = None
    structure: Any = None
    raw: bytes | None = None


def _text_of(st: Any, raw: bytes) -> bytes:
    span = st.parts.get("TEXT") if st is not None else None
    if span is not None:
        return raw[span.body_start:span.end]
    return raw[split_header(raw):]


def section_data(sec: BodySection, st: Any, raw: bytes | None) -> bytes | None:
    """The bytes ``sec`` names (CRLF line ends, RFC 3501 §2.3.4), or None when the part does not exist."""
    data = _section_raw(sec, st, raw)
    return None if data is None else wire_text(data)


def _section_raw(sec: BodySection, st: Any, raw: bytes | None) -> bytes | None:
    """Offsets per :mod:`parser.imap_structure`: ``"TEXT"`` spans the top-level body, part ``n`` its
    body (``n.MIME`` its MIME header), and ``"n.TEXT"`` the message inside a message/rfc822 part."""
    if not sec.part:
        if sec.specifier is None:
            return raw
        header = st.header_block if st is not None else (raw[:split_header(raw)] if raw is not None else b"")
        return _of_message(sec, header, lambda: _text_of(st, raw or b""))
    if st is None or raw is None:
        return None
    number = ".".join(str(p) for p in sec.part)
    span = st.parts.get(number)
    if span is None:
        return None
    if sec.specifier is None:
        return raw[span.body_start:span.end]
    if sec.specifier == "MIME":
        return raw[span.header_start:span.body_start]
    inner = st.parts.get(f"{number}.TEXT")  # only message/rfc822 parts have a header and text
    if inner is None:
        return None
    return _of_message(sec, raw[inner.header_start:inner.body_start], lambda: raw[inner.body_start:inner.end])


def _of_message(sec: BodySection, header: bytes, text) -> bytes:
    """HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT or TEXT of a (possibly encapsulated) message."""
    if sec.specifier == "HEADER":
        return header
    if sec.specifier == "HEADER.FIELDS":
        return header_fields(header, sec.fields)
    if sec.specifier == "HEADER.FIELDS.NOT":
        return header_fields(header, sec.fields, exclude=True)
    return text()  # TEXT


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    origin, count = partial
    return data[origin:origin + count]


def render(d: FetchData, request: FetchRequest, *, uid_command: bool, with_modseq: bool,
           flags_changed: bool = False) -> bytes:
    """``* seq FETCH (…)\\r\\n`` for one message. UID comes first for UID FETCH (RFC 3501 §6.4.8);
    FLAGS is added when the fetch set \\Seen (§6.4.5); MODSEQ when CONDSTORE is on (RFC 7162 §3.1.4)."""
    items: list[bytes] = []
    names_done: set[str] = set()
    if uid_command:
        items.append(b"UID %d" % d.uid)
        names_done.add("UID")
    for item in request.items:
        if isinstance(item, BodySection):
            data = section_data(item, d.structure, d.raw)
            # A section that does not exist is empty, as Dovecot answers (RFC 3501 names no error for it).
            items.append(item.label() + b" " + _body_literal(_partial(data or b"", item.partial)))
            continue
        if item in names_done:
            continue
        names_done.add(item)
        if item == "UID":
            items.append(b"UID %d" % d.uid)
        elif item == "FLAGS":
            items.append(b"FLAGS " + flags_out(d.flags, d.session_flags))
        elif item == "MODSEQ":
            items.append(b"MODSEQ (%d)" % d.modseq)
        elif item == "INTERNALDATE":
            items.append(b"INTERNALDATE " + internaldate_out(d.meta.received_at))
        elif item == "RFC822.SIZE":
            size = getattr(d.structure, "size", 0) or d.meta.size
            items.append(b"RFC822.SIZE %d" % size)
        elif item == "ENVELOPE":
            items.append(b"ENVELOPE " + d.structure.envelope)
        elif item == "BODYSTRUCTURE":
            items.append(b"BODYSTRUCTURE " + d.structure.bodystructure)
        elif item == "BODY":
            items.append(b"BODY " + d.structure.body)
        elif item == "RFC822":
            items.append(b"RFC822 " + _body_literal(wire_text(d.raw or b"")))
        elif item == "RFC822.HEADER":
            items.append(b"RFC822.HEADER " + _body_literal(wire_text(d.structure.header_block)))
        elif item == "RFC822.TEXT":
            items.append(b"RFC822.TEXT " + _body_literal(wire_text(_text_of(d.structure, d.raw or b""))))
    if flags_changed and "FLAGS" not in names_done:
        items.append(b"FLAGS " + flags_out(d.flags, d.session_flags))
    if with_modseq and "MODSEQ" not in names_done and ("FLAGS" in names_done or flags_changed):
        # RFC 7162 §3.1.4.1: with CONDSTORE enabled, MODSEQ goes with every FLAGS.
        items.append(b"MODSEQ (%d)" % d.modseq)
    return b"* %d FETCH (" % d.seq + b" ".join(items) + b")\r\n"


def _body_literal(data: bytes) -> bytes:
    return literal_out(data)  # always a literal, even empty (``{0}``), as Dovecot writes it


def flags_update(seq: int, uid: int, flags: int, session_flags: frozenset[str], modseq: int | None,
                 *, with_uid: bool) -> bytes:
    """An unsolicited ``* seq FETCH (FLAGS (…) [UID n] [MODSEQ (m)])`` (RFC 3501 §7.4.2, RFC 7162 §3.2)."""
    parts = [b"FLAGS " + flags_out(flags, session_flags)]
    if with_uid:
        parts.insert(0, b"UID %d" % uid)
    if modseq is not None:
        parts.append(b"MODSEQ (%d)" % modseq)
    return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"
