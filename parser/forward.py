"""The ``forwarded`` summary of an attached message (``message/rfc822``, ``message/global``):
who wrote it, to whom, when, about what, read from the enclosed header block (RFC 2046 §5.2.1)."""

from __future__ import annotations

from typing import Any

from parser.headers import decode_value, first_msg_id, parse_addresses, parse_date, read_headers
from parser.model import iso8601

MAX_ENCLOSED_HEADER_BYTES = 256 * 1024


def forwarded_summary(enclosed: bytes) -> dict[str, Any] | None:
    """``{"subject", "from", "to", "cc", "date", "message_id"}`` of an enclosed message, or None when
    it has no readable header. Addresses as ``{"name", "address"}``; ``date`` ISO 8601 UTC."""
    try:
        fields = read_headers(enclosed[:MAX_ENCLOSED_HEADER_BYTES])
    except Exception:  # noqa: BLE001 - hostile bytes inside an attachment: no summary
        return None
    if not fields:
        return None

    def values(name: str) -> list[str]:
        return [v for n, v in fields if n.lower() == name]

    subject = values("subject")
    froms = parse_addresses(values("from"))
    date = values("date")
    return {
        "subject": decode_value(subject[0]) if subject else None,
        "from": froms[0].to_json() if froms else None,
        "to": [a.to_json() for a in parse_addresses(values("to"))],
        "cc": [a.to_json() for a in parse_addresses(values("cc"))],
        "date": iso8601(parse_date(date[0])) if date else None,
        "message_id": first_msg_id(values("message-id")[0]) if values("message-id") else None,
    }
