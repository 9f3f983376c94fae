"""Typed output of the parser: :class:`ParsedMessage` and its parts.

``ParsedMessage.to_json()`` gives the message fields of the webhook body (DESIGN.md, "Webhooks");
the pipeline adds the envelope, ids, authentication and scan verdicts around it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from parser.automated import AutoSubmitted


@dataclass(frozen=True)
class Address:
    """A mailbox: display name (RFC 2047 decoded, ``""`` when absent) and addr-spec."""

    name: str
    address: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass
class Attachment:
    """A non-body MIME part. ``content`` is the transfer-decoded bytes (never put in JSON by
    default); ``part`` is its IMAP part number (RFC 3501 §6.4.5, e.g. ``"2.1"``)."""

    id: str
    filename: str | None
    content_type: str
    size: int
    disposition: str  # "attachment" | "inline"
    content_id: str | None
    sha256: str
    part: str
    content: bytes = field(repr=False, default=b"")
    #: For ``message/rfc822`` and ``message/global``: the enclosed message's header summary
    #: (``parser.forward.forwarded_summary``); None for other parts.
    forwarded: dict[str, Any] | None = None

    def to_json(self, *, inline_content: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "filename": self.filename, "content_type": self.content_type, "size": self.size,
            "disposition": self.disposition, "content_id": self.content_id, "sha256": self.sha256,
        }
        if self.forwarded is not None:
            out["forwarded"] = self.forwarded
        if inline_content:
            out["content"] = base64.b64encode(self.content).decode("ascii")
        return out


@dataclass
class ParsedMessage:
    """Everything read from one message's bytes. Every field is present even when the message is
    broken; what could not be read is listed in ``parse_errors``."""

    size: int
    sha256: str
    headers: list[tuple[str, str]]
    subject: str | None = None
    date: datetime | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    from_: Address | None = None
    sender: Address | None = None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    extracted_text: str | None = None
    extracted_html: str | None = None
    extracted_signature: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    thread_key: str | None = None
    auto_submitted: AutoSubmitted = field(default_factory=AutoSubmitted)
    parse_errors: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), decoded, or None."""
        lname = name.lower()
        return next((v for n, v in self.headers if n.lower() == lname), None)

    def to_json(self, *, inline_attachments: bool = False) -> dict[str, Any]:
        """The message fields of the webhook ``data`` object (JSON-ready)."""
        return {
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "subject": self.subject,
            "date": iso8601(self.date),
            "from": self.from_.to_json() if self.from_ else None,
            "to": [a.to_json() for a in self.to],
            "cc": [a.to_json() for a in self.cc],
            "reply_to": [a.to_json() for a in self.reply_to],
            "headers": [[n, v] for n, v in self.headers],
            "text": self.text,
            "html": self.html,
            "extracted_text": self.extracted_text,
            "extracted_html": self.extracted_html,
            "extracted_signature": self.extracted_signature,
            "attachments": [a.to_json(inline_content=inline_attachments) for a in self.attachments],
            "auto_submitted": self.auto_submitted.to_json(),
            "size": self.size,
            "parse_errors": list(self.parse_errors),
        }


def iso8601(value: datetime | None) -> str | None:
    """``2026-11-22T10:00:00Z`` for a UTC-convertible datetime, None for None."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}"[:4] if value.microsecond else "") + "Z"
