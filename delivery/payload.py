"""The ``message.received`` webhook body, exactly as in DESIGN.md ("Webhooks").

Built at each attempt from the stored message row and its parsed JSON, so attachment links are
fresh; the ``webhook-id`` (the event id) and the body's ``timestamp`` (the event's creation time)
stay the same across retries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from delivery.links import LinkSigner
from parser import jsonbytes
from parser.automated import AutoSubmitted, with_null_sender
from parser.model import iso8601
from store.messages import MessageRecord

EVENT_TYPE = "message.received"


def message_data(message: MessageRecord, parsed: dict[str, Any] | None, *, links: LinkSigner | None,
                 inline_attachments: bool = False) -> dict[str, Any]:
    """The ``data`` object. ``parsed``: ``ParsedMessage.to_json()`` (with ``content`` in each
    attachment when ``inline_attachments``); None when the content is gone."""
    p = parsed or {}
    attachments = []
    for att in p.get("attachments", []):
        item = {k: att.get(k) for k in ("id", "filename", "content_type", "size", "disposition", "content_id",
                                         "sha256")}
        if att.get("forwarded") is not None:
            item["forwarded"] = att["forwarded"]
        item["url"] = links.attachment_url(message.id, att["id"]) if (links and message.raw_key) else None
        if inline_attachments and "content" in att:
            item["content"] = att["content"]
        attachments.append(item)
    return {
        "id": message.id,
        "domain": message.domain,
        "inbox": message.inbox,
        "envelope": {"mail_from": message.mail_from, "rcpt_to": list(message.rcpt_to),
                     "client_ip": message.client_ip, "helo": message.helo, "tls": message.tls},
        "received_at": iso8601(message.received_at),
        "message_id": p.get("message_id"),
        "in_reply_to": p.get("in_reply_to"),
        "references": p.get("references", []),
        "thread_id": message.thread_id,
        "subject": p.get("subject"),
        "date": p.get("date"),
        "from": p.get("from"),
        "to": p.get("to", []),
        "cc": p.get("cc", []),
        "reply_to": p.get("reply_to", []),
        "headers": p.get("headers", []),
        "text": p.get("text"),
        "html": p.get("html"),
        "extracted_text": p.get("extracted_text"),
        "extracted_html": p.get("extracted_html"),
        "extracted_signature": p.get("extracted_signature"),
        "auto_submitted": with_null_sender(AutoSubmitted.from_json(p.get("auto_submitted")),
                                           message.mail_from).to_json(),
        "attachments": attachments,
        "size": message.size,
        "raw_url": links.raw_url(message.id) if (links and message.raw_key) else None,
        "retention": message.retention,
        "auth": message.auth,
        "spam": message.spam,
        "virus": message.virus,
        "parse_errors": p.get("parse_errors", message.parse_errors),
    }


def event_body(event_created_at: datetime, data: dict[str, Any]) -> bytes:
    """The serialised body (UTF-8 JSON, compact). The signature covers exactly these bytes."""
    doc = {"type": EVENT_TYPE, "timestamp": iso8601(event_created_at), "data": data}
    return jsonbytes.dumps(doc)
