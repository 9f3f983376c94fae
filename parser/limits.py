"""Structural limits of :func:`parser.parse`, and the byte-level count that enforces them before any
MIME parser builds a tree.

A hostile message can ask a parser for a million parts or a nesting ten thousand levels deep in a few
megabytes; both MIME parsers (flanker, the stdlib ``email``) build the whole tree before we could
count. So the lines that open a part (boundary delimiters and ``Content-Type`` fields) are counted
on the raw bytes first and the MIME walk only ever sees the message up to the limit; the header
block and the size are still read from the whole message, and ``parse_errors`` says what was cut.
:func:`structure_cut` defines the cut; :func:`parser.mime_tokens.tokenize` applies the same count
during the token scan it makes anyway (one pass over the bytes), and the stdlib fallback uses
:func:`structure_cut` for its own, smaller retry.
"""

from __future__ import annotations

import re

#: Leaf parts reported at most (body parts and attachments together).
MAX_PARTS = 1000
#: Multipart / message nesting levels walked at most (RFC 2046 sets no limit; receivers must).
MAX_DEPTH = 50
#: Header fields of the top-level header block kept at most.
MAX_HEADERS = 1000
#: Lines that open structure (``--boundary`` or ``Content-Type:``) a message may have before the MIME
#: walk stops reading: roughly two per part, with room for preambles and closing delimiters.
MAX_STRUCTURE_LINES = 3 * MAX_PARTS

_STRUCTURE_RE = re.compile(rb"^(?:--|content-type[ \t]*:)", re.IGNORECASE | re.MULTILINE)


def structure_cut(raw: bytes, limit: int = MAX_STRUCTURE_LINES) -> int | None:
    """The byte offset of the ``limit``-th structure line of ``raw``, or None when there are fewer.

    A fast upper bound first (``bytes.count`` of line starts that could open structure); the regex
    scan runs only when the bound reaches ``limit``. Neither copies ``raw``."""
    bound = raw.count(b"\n--") + raw.count(b"\nContent-") + raw.count(b"\ncontent-") + raw.count(b"\nCONTENT-")
    if bound + 2 < limit:
        return None
    for count, m in enumerate(_STRUCTURE_RE.finditer(raw), start=1):
        if count >= limit:
            return m.start()
    return None
