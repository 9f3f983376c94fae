"""The header/body split of a message without a stored structure (RFC 5322 §2.1: the first empty
line). Everything else is cut with the parser's stored part offsets
(:class:`parser.imap_structure.PartSpan`) and :func:`parser.imap_structure.header_fields`."""

from __future__ import annotations

import re

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
