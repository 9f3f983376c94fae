"""What the ingest pipeline computes off the event loop, in one executor call.

``parse_for_ingest(raw, stored_raw)``: the webhook's :class:`ParsedMessage` of the bytes received
and, when the message is kept, the IMAP structures of the bytes as stored (the stored copy carries
our trace fields on top, so its offsets differ from ``raw``'s). A module-level function of plain
arguments, so a spawn ``ProcessPoolExecutor`` can run it.
"""

from __future__ import annotations

from parser.imap_structure import ImapStructure, compute
from parser.mime import parse
from parser.model import ParsedMessage


def parse_for_ingest(raw: bytes, stored_raw: bytes | None) -> tuple[ParsedMessage, ImapStructure | None]:
    """(``parse(raw)``, ``compute(stored_raw)`` or None when nothing is stored). Never raises on content."""
    return parse(raw), (compute(stored_raw) if stored_raw is not None else None)
