"""Removing header fields from a raw message, byte-exactly: what a receiver must drop before it adds
trace fields of its own that a sender could otherwise forge (RFC 8601 §5 for
``Authentication-Results``; the scan verdict fields by the same reasoning).

Only the header block is touched, and only whole fields (the first line and its continuation
lines, RFC 5322 §2.2.3); every other byte, line endings included, stays as received.
"""

from __future__ import annotations

import re
from typing import Callable

_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")  # RFC 5322 §3.6.8 field-name, then optional WSP, colon


def header_end(raw: bytes) -> int:
    """Offset just past the header block's last line (the blank line and the body follow); 0 when
    the message starts with the blank line, ``len(raw)`` when it has none."""
    if raw.startswith((b"\r\n", b"\n")):
        return 0
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i != -1]
    if not ends:
        return len(raw)
    i = min(ends)
    return i + (2 if raw[i:i + 2] == b"\r\n" else 1)


def remove_fields(raw: bytes, names: set[bytes], drop: Callable[[list[bytes]], bool] | None = None) -> bytes:
    """``raw`` without the header fields whose name (lowercase bytes) is in ``names`` and, when
    ``drop`` is given, for which ``drop(lines)`` (the field's lines, line endings kept) is true.
    Returns ``raw`` itself when nothing is removed. Never raises."""
    end = header_end(raw)
    head = raw[:end]
    lowered = head.lower()
    if not any(name in lowered for name in names):
        return raw
    fields: list[list[bytes]] = []  # each field: its first line and continuation lines
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept = [f for f in fields if not _matches(f, names, drop)]
    if len(kept) == len(fields):
        return raw
    return b"".join(b"".join(f) for f in kept) + raw[end:]


def _matches(lines: list[bytes], names: set[bytes], drop: Callable[[list[bytes]], bool] | None) -> bool:
    m = _NAME.match(lines[0])
    return m is not None and m.group(1).lower() in names and (drop is None or drop(lines))
