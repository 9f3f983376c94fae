"""Cutting message sections out of stored bytes (RFC 3501 §6.4.5 ``BODY[section]``).

Pure functions over ``bytes``: header field selection (HEADER.FIELDS / HEADER.FIELDS.NOT) and the
header/body split of an (encapsulated) message. Part offsets come from the parser's stored
structure (:class:`parser.imap_structure.PartSpan`), so no MIME parsing happens here.
"""

from __future__ import annotations

import re

_FIELD_START = re.compile(rb"(?:\r?\n)(?![ \t])")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def split_header(message: bytes) -> int:
    """Offset where the body of ``message`` starts (after the blank line); ``len`` when there is
    no blank line (the whole message is header). A message starting with a blank line has an
    empty header."""
    if message.startswith(b"\r\n"):
        return 2
    if message.startswith(b"\n"):
        return 1
    m = _HEADER_END.search(message)
    return m.end() if m else len(message)


def _fields(block: bytes) -> list[bytes]:
    """The fields of a header block (continuation lines kept), each with its line ending."""
    out = []
    pos = 0
    n = len(block)
    while pos < n:
        m = _FIELD_START.search(block, pos)
        if m is None:
            out.append(block[pos:])
            break
        out.append(block[pos:m.end()])
        pos = m.end()
    return out


def header_fields(block: bytes, names: tuple[str, ...] | list[str], *, exclude: bool = False) -> bytes:
    """The fields of ``block`` (a header with its blank line) whose names are (``exclude``: are not)
    in ``names`` (case-insensitive), in message order, then the blank line (RFC 3501 §6.4.5)."""
    wanted = {n.strip().lower().encode("utf-8", "replace") for n in names}
    eol = b"\r\n" if b"\r\n" in block[:2048] or not block else b"\n"
    # Drop the blank line that ends the block.
    stripped = block
    if stripped.endswith(b"\r\n\r\n"):
        stripped = stripped[:-2]
    elif stripped.endswith(b"\n\n"):
        stripped = stripped[:-1]
    elif stripped in (b"\r\n", b"\n"):
        stripped = b""
    picked = []
    for field in _fields(stripped):
        colon = field.find(b":")
        name = (field[:colon] if colon >= 0 else field).strip().lower()
        if (name in wanted) != exclude:
            if not field.endswith(b"\n"):
                field += eol
            picked.append(field)
    return b"".join(picked) + eol


def to_crlf(data: bytes) -> bytes:
    """``data`` with every bare LF made CRLF (IMAP sends CRLF lines, RFC 3501 §2.3.4)."""
    if b"\n" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
