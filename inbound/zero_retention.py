"""Zero-retention delivery: webhooks sent during the SMTP session, nothing kept at rest.

DESIGN.md "Invariants": no blob, no body in the database, no queued copy. Every endpoint of the
recipient's domain gets the event with attachments inline (``content``, base64); the message is
accepted only when every one answered 2xx, otherwise the pipeline answers ``451 4.3.0`` and the
sending server keeps the message and retries (that is the retry queue). The database keeps ids,
times and status codes only.

A retry is recognised: the earlier try of the same message (the SHA-256 of the bytes as received,
the envelope sender and the inbox, within :data:`RETRY_WINDOW`) lends it its message id and, per
endpoint, its event id, so ``webhook-id`` stays the receiver's idempotency key across the sending
server's retries as it does across ours (DESIGN.md "Webhooks"); an endpoint that already answered
2xx is not sent the message again. The hash is not content: it cannot be turned back into the
message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from delivery.payload import event_body, message_data
from delivery.sender import AsyncWebhookSender
from delivery.signing import webhook_headers
from inbound.types import AuthResults, ScanResults, SmtpEnvelope
from parser import ParsedMessage
from store.crypto import SecretBox
from store.db import Database
from store.endpoints import decrypt_secrets, endpoints_for_domain
from store.events import EarlierInlineDelivery, InlineAttempt, earlier_inline_deliveries, record_inline_deliveries
from store.ids import new_id
from store.messages import MessageRecord, NewTransaction, Recipient, thread_id_for
from store.models import MessageStatus, Retention, utcnow

log = logging.getLogger("mailkite.zero_retention")

# How far back a retry is matched with its earlier try: sending servers give up after 4-5 days
# (RFC 5321 §4.5.4.1).
RETRY_WINDOW = timedelta(days=5)


@dataclass(frozen=True)
class _Target:
    endpoint_id: str
    url: str
    secrets: list[str]


@dataclass(frozen=True)
class _Job:
    message_id: str
    event_id: str
    target: _Target
    data: dict[str, Any]
    attempt: int


class ZeroRetentionDelivery:
    """Delivers one transaction's zero-retention recipients in-session."""

    def __init__(self, *, db: Database, sender: AsyncWebhookSender, secret_box: SecretBox) -> None:
        self.db = db
        self.sender = sender
        self.box = secret_box

    def _lookup(self, envelope: SmtpEnvelope, received_sha256: str, recipients: list[Recipient]
                ) -> tuple[dict[str, list[_Target]], dict[str, EarlierInlineDelivery]]:
        """The enabled endpoints per recipient domain id, and the earlier tries of this message (one
        read transaction)."""
        with self.db.read() as s:
            targets = {r.domain.id: [_Target(ep.id, ep.url, decrypt_secrets(self.box, ep.secret_ciphertext))
                                     for ep in endpoints_for_domain(s, r.domain.account_id, r.domain.id)]
                       for r in recipients}
            earlier = earlier_inline_deliveries(s, sha256=received_sha256, mail_from=envelope.mail_from,
                                                inboxes=[(r.domain.id, r.inbox) for r in recipients],
                                                since=envelope.received_at - RETRY_WINDOW)
        return targets, earlier

    async def deliver(self, envelope: SmtpEnvelope, parsed: ParsedMessage, recipients: list[Recipient],
                      auth: AuthResults, scan: ScanResults, *, received_sha256: str) -> tuple[bool, list[str]]:
        """Deliver to every endpoint concurrently; returns (every endpoint has answered 2xx, by now
        or on an earlier try, message ids). ``received_sha256``: hex SHA-256 of the message as
        received, which recognises a retry (see the module docstring).

        A recipient whose domain has no endpoint at all makes it not delivered: accepting would lose
        the message."""
        targets, earlier = await asyncio.to_thread(self._lookup, envelope, received_sha256, recipients)
        parsed_json = parsed.to_json(inline_attachments=True)
        message_ids = [earlier[r.inbox].message_id if r.inbox in earlier else new_id("msg") for r in recipients]
        jobs: list[_Job] = []
        for msg_id, r in zip(message_ids, recipients):
            before = earlier[r.inbox].events if r.inbox in earlier else {}
            # (endpoint, its earlier event or None), leaving out the endpoints already served
            due = [(t, before.get(t.endpoint_id)) for t in targets[r.domain.id]]
            due = [(t, prior) for t, prior in due if prior is None or not prior.delivered]
            if not due:
                continue
            record = _message_record(msg_id, envelope, parsed, r, auth, scan)
            data = message_data(record, parsed_json, links=None, inline_attachments=True)
            jobs += [_Job(msg_id, prior.event_id if prior else new_id("evt"), t, data,
                          prior.attempts + 1 if prior else 1) for t, prior in due]
        unserved = sorted({r.domain.name for r in recipients if not targets[r.domain.id]})
        if unserved:
            log.error("zero_retention.no_endpoint", extra={"kv": {"domains": unserved}})
        attempts = list(await asyncio.gather(*(self._post(job, envelope.received_at) for job in jobs)))
        delivered = not unserved and all(a.ok for a in attempts)
        tx = NewTransaction(
            transaction_id=new_id("txn"), recipients=recipients, mail_from=envelope.mail_from,
            client_ip=envelope.client_ip, helo=envelope.helo, tls=envelope.tls, received_at=envelope.received_at,
            size=parsed.size, sha256=received_sha256, raw_key=None, parsed_key=None,
            retention=Retention.ZERO_RETENTION,
            status=MessageStatus.ACCEPTED if delivered else MessageStatus.DEFERRED,
            create_events=False, message_ids=message_ids,
        )
        await asyncio.to_thread(record_inline_deliveries, self.db, tx, attempts, earlier)
        return delivered, message_ids

    async def _post(self, job: _Job, created_at: datetime) -> InlineAttempt:
        started = utcnow()
        body = event_body(created_at, job.data)
        headers = webhook_headers(job.target.secrets, job.event_id, int(time.time()), body)
        result = await self.sender.post(job.target.url, body, headers)
        log.info("webhook.attempt", extra={"kv": {
            "event_id": job.event_id, "message_id": job.message_id, "endpoint_id": job.target.endpoint_id,
            "attempt": job.attempt, "status": result.status_code, "latency_ms": round(result.latency_ms, 1),
            "error": result.error, "outcome": "delivered" if result.ok else "deferred",
            "retention": Retention.ZERO_RETENTION.value}})
        return InlineAttempt(job.event_id, job.message_id, job.target.endpoint_id, started, result.status_code,
                             result.latency_ms, result.error, job.attempt)


def _message_record(msg_id: str, envelope: SmtpEnvelope, parsed: ParsedMessage, r: Recipient,
                    auth: AuthResults, scan: ScanResults) -> MessageRecord:
    """The in-memory message the payload is built from (never written with its content)."""
    return MessageRecord(
        id=msg_id, transaction_id="", account_id=r.domain.account_id, domain=r.domain.name, inbox=r.inbox,
        mailbox="INBOX", imap_uid=None, status=MessageStatus.ACCEPTED.value,
        retention=Retention.ZERO_RETENTION.value, received_at=envelope.received_at, mail_from=envelope.mail_from,
        rcpt_to=list(r.rcpt_to), client_ip=envelope.client_ip, helo=envelope.helo, tls=envelope.tls,
        message_id_header=parsed.message_id, in_reply_to=parsed.in_reply_to, references=parsed.references,
        thread_id=thread_id_for(r.domain.account_id, parsed.thread_key, msg_id), subject=parsed.subject,
        from_address=parsed.from_.address if parsed.from_ else None,
        from_name=parsed.from_.name if parsed.from_ else None, date=parsed.date, size=parsed.size,
        sha256=parsed.sha256, raw_key=None, parsed_key=None, parse_errors=parsed.parse_errors,
        auth=auth.to_json(), spam=scan.spam, virus=scan.virus,
    )
