"""IMAP structures of one message, computed once at ingest: ENVELOPE, BODYSTRUCTURE, BODY, the
header block and the byte span of every part, so the IMAP window answers FETCH without re-reading
or re-parsing the raw blob.

Pure: no I/O. ``compute(raw)`` never raises on message content.

- ``envelope`` / ``bodystructure`` / ``body`` are the wire bytes a server writes after
  ``ENVELOPE `` / ``BODYSTRUCTURE `` / ``BODY `` (RFC 3501 §7.4.2), parentheses included. Header
  text is sent as it appears (RFC 2047 encoded-words are not decoded, the Date is verbatim), as
  Dovecot does. Sizes count every bare LF as CRLF, as the message is served with CRLF lines.
- ``parts`` maps RFC 3501 §6.4.5 part numbers to :class:`PartSpan` offsets into ``raw``:
  ``BODY[n]`` = ``raw[s.body_start:s.end]``, ``BODY[n.MIME]`` = ``raw[s.header_start:s.body_start]``.
  ``"TEXT"`` is the top-level message (its header span is ``BODY[HEADER]``); for a message/rfc822
  part ``n``, ``"n.TEXT"`` spans the encapsulated message (header = ``BODY[n.HEADER]``, body =
  ``BODY[n.TEXT]``) and its parts are numbered ``n.1``, ``n.2``… A non-multipart message has part
  ``"1"`` (its body; its MIME header is the message header).
- :func:`header_fields` cuts ``BODY[HEADER.FIELDS (…)]`` / ``HEADER.FIELDS.NOT`` from a header block.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from parser.imap_mime import Field, MimePart, scan, virtual_size
from parser.imap_quote import NIL, nstring, nstring_nolf, string_for_humans
from parser.imap_rfc822 import NUL_REPLACEMENT, Address, parse_addresses, parse_content_type, \
    parse_language, parse_token_value, parse_transfer_encoding

log = logging.getLogger(__name__)

DEFAULT_CHARSET = b"us-ascii"  # RFC 2045 §5.2 default for text/*
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
_EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


@dataclass(frozen=True)
class PartSpan:
    """Byte offsets of one part in the stored raw message.

    ``header_start``: where the part's MIME header starts; ``body_start``: where its body starts
    (after the empty line); ``end``: one past the body's last byte (the line break before a
    boundary belongs to the boundary, RFC 2046 §5.1.1).
    """

    header_start: int
    body_start: int
    end: int


@dataclass(frozen=True)
class ImapStructure:
    """What the IMAP window needs to answer FETCH for one message without reading its blob.

    ``envelope``, ``bodystructure``, ``body``: RFC 3501 §7.4.2 wire forms. ``header_block``: the
    top-level header section exactly as in the raw bytes, including the terminating empty line
    (``BODY[HEADER]``). ``parts``: part number → :class:`PartSpan` (module docstring).
    ``size``: RFC822.SIZE (octets with bare LFs counted as CRLF). ``errors``: what could not be
    read (the structure then falls back to a single text/plain part), empty normally.
    """

    envelope: bytes
    bodystructure: bytes
    body: bytes
    header_block: bytes
    parts: dict[str, PartSpan]
    size: int = 0
    errors: tuple[str, ...] = ()


def compute(raw: bytes) -> ImapStructure:
    """The IMAP structures of ``raw`` (the message bytes as stored: CRLF, LF or mixed).

    Never raises for message content: an internal failure gives a one-part text/plain structure
    over the whole message and names the failure in ``errors``.
    """
    try:
        root = scan(raw)
        return ImapStructure(
            envelope=b"(" + _envelope(raw, root.fields) + b")",
            bodystructure=b"(" + _write(raw, root, True) + b")",
            body=b"(" + _write(raw, root, False) + b")",
            header_block=raw[root.header_start:root.body_start],
            parts=_number(root),
            size=virtual_size(raw, 0, len(raw)),
        )
    except Exception as exc:  # noqa: BLE001 - a bug must not lose the message; it is logged
        log.exception("imap_structure.failed")
        return _fallback(raw, f"{type(exc).__name__}: {exc}")


def _fallback(raw: bytes, error: str) -> ImapStructure:
    cut = raw.find(b"\n\n")
    cut_crlf = raw.find(b"\r\n\r\n")
    if cut_crlf >= 0 and (cut < 0 or cut_crlf < cut):
        body_start = cut_crlf + 4
    else:
        body_start = cut + 2 if cut >= 0 else len(raw)
    size, lines = virtual_size(raw, body_start, len(raw)), raw.count(b"\n", body_start)
    leaf = b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d' % (size, lines)
    span = PartSpan(0, body_start, len(raw))
    return ImapStructure(_EMPTY_ENVELOPE, b"(" + leaf + b" NIL NIL NIL NIL)", b"(" + leaf + b")",
                         raw[:body_start], {"TEXT": span, "1": span}, virtual_size(raw, 0, len(raw)),
                         (error,))


# -- ENVELOPE (RFC 3501 §7.4.2) ---------------------------------------------------------------

_ENVELOPE_TEXT = {b"date": 0, b"subject": 1, b"in-reply-to": 8, b"message-id": 9}
_ENVELOPE_ADDR = {b"from": 2, b"sender": 3, b"reply-to": 4, b"to": 5, b"cc": 6, b"bcc": 7}


def _header_text(value: bytes) -> bytes:
    return value.replace(b"\0", NUL_REPLACEMENT) if b"\0" in value else value


def _envelope(raw: bytes, fields: list[Field]) -> bytes:
    """The ten ENVELOPE fields, without the outer parentheses.

    date, subject, in-reply-to, message-id: the field as written (the last one when repeated);
    address fields: every occurrence merged in order (a second From is shown, not hidden).
    Sender and Reply-To default to From (RFC 3501 §7.4.2).
    """
    texts: list[bytes | None] = [None] * 10
    addrs: dict[int, list[Address]] = {}
    for f in fields:
        lname = f.lname
        slot = _ENVELOPE_TEXT.get(lname)
        if slot is not None:
            texts[slot] = _header_text(f.value)
            continue
        slot = _ENVELOPE_ADDR.get(lname)
        if slot is not None:
            addrs.setdefault(slot, []).extend(parse_addresses(f.value))
    frm = addrs.get(2) or None
    out = [
        nstring_nolf(texts[0]),
        NIL if texts[1] is None else string_for_humans(texts[1]),
        _addresses(frm),
        _addresses(addrs.get(3) or frm),
        _addresses(addrs.get(4) or frm),
        _addresses(addrs.get(5) or None),
        _addresses(addrs.get(6) or None),
        _addresses(addrs.get(7) or None),
        nstring_nolf(texts[8]),
        nstring_nolf(texts[9]),
    ]
    return b" ".join(out)


def _addresses(addrs: list[Address] | None) -> bytes:
    if not addrs:
        return NIL
    return b"(" + b"".join(
        b"(" + (NIL if a.name is None else string_for_humans(a.name)) + b" " + nstring(a.route) + b" "
        + nstring(a.mailbox) + b" " + nstring(a.domain) + b")" for a in addrs) + b")"


# -- BODY / BODYSTRUCTURE (RFC 3501 §7.4.2) ---------------------------------------------------

@dataclass
class _PartData:
    """The Content-* fields of one MIME entity (RFC 2045 §3, RFC 2183, RFC 3282, RFC 2557)."""

    type: bytes | None = None
    subtype: bytes = b""
    params: tuple[tuple[bytes, bytes], ...] = ()
    encoding: bytes | None = None
    id: bytes | None = None
    description: bytes | None = None
    md5: bytes | None = None
    disposition: bytes | None = None
    disposition_params: tuple[tuple[bytes, bytes], ...] = ()
    language: tuple[bytes, ...] = ()
    location: bytes | None = None


# Content-* fields sent as written (the first occurrence): RFC 2045 §7, §8; RFC 1864; RFC 2557 §4.2.
_VERBATIM_FIELDS = {b"id": "id", b"md5": "md5", b"description": "description", b"location": "location"}


def _part_data(part: MimePart) -> _PartData:
    d = _PartData()
    if not part.is_mime:
        return d  # Content-* fields mean nothing outside a MIME entity (RFC 2045 §4)
    for f in part.fields:
        lname = f.lname
        if not lname.startswith(b"content-"):
            continue
        what = lname[8:]
        if what == b"type":
            if d.type is None:
                ct = parse_content_type(f.value)
                d.type, d.subtype, d.params = ct.type, ct.subtype, ct.params
        elif what == b"transfer-encoding":
            if d.encoding is None:
                d.encoding = parse_transfer_encoding(f.value)
        elif what in _VERBATIM_FIELDS:
            attr = _VERBATIM_FIELDS[what]
            if getattr(d, attr) is None:
                setattr(d, attr, _header_text(f.value))
        elif what == b"language":
            if not d.language:
                d.language = tuple(parse_language(f.value))
        elif what == b"disposition":
            if not d.disposition_params:
                token, params = parse_token_value(f.value)
                if token is not None:
                    d.disposition, d.disposition_params = token, tuple(params)
    return d


def _params(params: tuple[tuple[bytes, bytes], ...], default_charset: bool) -> bytes:
    """``body-fld-param``: NIL or ("name" "value" …); text/* gets charset us-ascii by default."""
    if not params and not default_charset:
        return NIL
    items = [nstring(k) + b" " + nstring(v) for k, v in params]
    if default_charset and not any(k.lower() == b"charset" for k, _ in params):
        items.append(b'"charset" "' + DEFAULT_CHARSET + b'"')
    return b"(" + b" ".join(items) + b")"


def _extension_common(d: _PartData) -> bytes:
    """body-fld-dsp body-fld-lang body-fld-loc (RFC 3501 §7.4.2 extension data)."""
    if d.disposition is None:
        dsp = NIL
    else:
        dsp = b"(" + nstring(d.disposition) + b" " + _params(d.disposition_params, False) + b")"
    lang = NIL if not d.language else b"(" + b" ".join(nstring(x) for x in d.language) + b")"
    return b" " + dsp + b" " + lang + b" " + nstring_nolf(d.location)


def _write(raw: bytes, part: MimePart, extended: bool) -> bytes:
    """One part's body structure without its enclosing parentheses."""
    d = _part_data(part)
    if part.multipart:
        if part.children:
            out = b"".join(b"(" + _write(raw, c, extended) + b")" for c in part.children)
        else:  # a multipart with no parts (no boundary found): one empty text/plain part
            out = _EMPTY_BODYSTRUCTURE if extended else _EMPTY_BODY
        out += b" " + nstring(d.subtype)
        if extended:
            out += b" " + _params(d.params, False) + _extension_common(d)
        return out

    if part.rfc822:
        out, text = b'"message" "rfc822"', False
    elif _truncated(part, d):
        # A message/rfc822 or multipart that could not be read as one (nesting limit, or a
        # multipart type without a readable subtype) is offered as opaque octets.
        out, text = b'"application" "octet-stream"', False
    elif d.type is None:
        out, text = b'"text" "plain"', True
    else:
        text = d.type.lower() == b"text"
        out = nstring(d.type) + b" " + nstring(d.subtype)
    out += (b" " + _params(d.params, text) + b" " + nstring_nolf(d.id) + b" " + nstring_nolf(d.description)
            + b" " + (nstring(d.encoding) if d.encoding is not None else b'"7bit"')
            + b" %d" % part.body_size(raw))
    if text:
        out += b" %d" % part.body_lines(raw)
    elif part.rfc822:
        inner = part.children[0]
        out += (b" (" + _envelope(raw, inner.fields) + b") (" + _write(raw, inner, extended) + b")"
                + b" %d" % part.body_lines(raw))
    if extended:
        out += b" " + nstring_nolf(d.md5) + _extension_common(d)
    return out


def _truncated(part: MimePart, d: _PartData) -> bool:
    if d.type is not None:
        t = d.type.lower()
        return (t == b"message" and d.subtype.lower() == b"rfc822") or t == b"multipart"
    return part.parent is not None and part.parent.digest


# -- part numbers (RFC 3501 §6.4.5) -------------------------------------------------------------

def _number(root: MimePart) -> dict[str, PartSpan]:
    spans: dict[str, PartSpan] = {"TEXT": PartSpan(root.header_start, root.body_start, root.end)}

    def add(part: MimePart, num: str) -> None:
        spans[num] = PartSpan(part.header_start, part.body_start, part.end)
        if part.multipart:
            children(part, num + ".")
        elif part.rfc822 and part.children:
            inner = part.children[0]
            spans[num + ".TEXT"] = PartSpan(inner.header_start, inner.body_start, inner.end)
            if inner.multipart:
                children(inner, num + ".")
            else:
                add(inner, num + ".1")

    def children(part: MimePart, prefix: str) -> None:
        for i, child in enumerate(part.children, 1):
            add(child, f"{prefix}{i}")

    if root.multipart:
        children(root, "")
    else:
        add(root, "1")
    return spans


# -- HEADER.FIELDS (RFC 3501 §6.4.5) -----------------------------------------------------------

def header_fields(header_block: bytes, names: list[str] | tuple[str, ...], exclude: bool = False) -> bytes:
    """``BODY[HEADER.FIELDS (names)]`` (or ``HEADER.FIELDS.NOT`` with ``exclude``) from a header block.

    ``header_block``: a header section as stored (:attr:`ImapStructure.header_block`, or
    ``raw[s.header_start:s.body_start]`` of an ``"n.TEXT"`` span for ``BODY[n.HEADER.FIELDS …]``).
    Returns the selected fields in their original order and text (continuation lines included),
    as sent (:func:`wire_text`: CRLF line ends, NUL as 0x80), then the empty line that ends the
    header. Field names compare
    case-insensitively; a line without a colon has no name and matches no name.

    RFC 3501 §6.4.5: "the blank line is included in all header fetches, except in the case of a
    message which has no body and no blank line" - so a header block without its empty line gives
    the fields alone.
    """
    wanted = {n.strip().lower().encode("ascii", "replace") for n in names}
    out = bytearray()
    n, pos = len(header_block), 0
    match = _FIELD.match
    while pos < n:
        m = match(header_block, pos)
        if m.end() - pos <= 2 and not m.group(2) and header_block[pos:m.end()] in (b"\n", b"\r\n"):
            break  # the empty line ending the header
        name = m.group(1).rstrip(b" \t") if m.group(2) else b""
        if len(name) > _HEADER_NAME_MAX:
            name = b""
        if (name.lower() in wanted) != exclude:
            out += header_block[pos:m.end()]
        pos = m.end()
    if header_block in (b"\n", b"\r\n") or header_block.endswith((b"\n\n", b"\n\r\n")):
        out += b"\r\n"
    return wire_text(bytes(out))


# One header field: the name up to the first colon of its first line (none: a nameless line), the
# rest of that line, its continuation lines (starting with a space or tab), and its line break.
_FIELD = re.compile(rb"([^:\n]*)(:?)[^\n]*(?:\n[ \t][^\n]*)*\n?")
_HEADER_NAME_MAX = 1000


def wire_text(data: bytes) -> bytes:
    """A section of the stored message as sent in a ``BODY[…]`` literal.

    Bare LFs become CRLF (RFC 3501 §2.3.4: messages are exchanged with CRLF lines; sizes in
    BODYSTRUCTURE and RFC822.SIZE already count them so) and NUL becomes 0x80 (a literal's CHAR8
    excludes NUL, RFC 3501 §4.3 and §9; only BINARY[] may carry it, RFC 3516).
    """
    data = to_crlf(data)
    return data.replace(b"\0", b"\x80") if b"\0" in data else data


def to_crlf(data: bytes) -> bytes:
    """``data`` with every bare LF made CRLF (IMAP sends CRLF lines, RFC 3501 §2.3.4)."""
    if b"\n" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
