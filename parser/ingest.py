"""What the ingest pipeline computes off the event loop, in one executor call.

``parse_for_ingest(stored_raw, received_at)``: the webhook's :class:`ParsedMessage` of the bytes
received and, when the message is kept, the IMAP structures of the bytes as stored (the stored copy
carries our trace fields on top, so its offsets differ from the received bytes'). A module-level function of plain
arguments, so a spawn ``ProcessPoolExecutor`` can run it.
"""

from __future__ import annotations

from parser.imap_structure import ImapStructure, compute
from parser.mime import parse
from parser.model import ParsedMessage


def parse_for_ingest(stored_raw: bytes, received_at: int, *, store: bool = True
                     ) -> tuple[ParsedMessage, ImapStructure | None]:
    """``(parse(received), compute(stored_raw) or None)`` where ``received = stored_raw[received_at:]``:
    the stored copy is our trace fields followed by the bytes as received, so the message crosses to
    the worker process once. ``store`` False (nothing kept): no IMAP structure. Never raises on content."""
    received = stored_raw[received_at:] if received_at else stored_raw
    return parse(received), (compute(stored_raw) if store else None)


def warm_up() -> None:
    """Import and exercise the parsing code once (a process-pool initializer): the first real
    message should not pay for flanker's and the structure code's imports (~0.2 s)."""
    sample = b"Subject: warm-up\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"
    parse_for_ingest(sample, 0)
