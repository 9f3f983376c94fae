"""The ingest pipeline run at end of DATA: check → decide → parse → store → reply.

``SmtpEnvelope`` + raw bytes → (:class:`AuthResults`, :class:`ScanResults`, run concurrently) →
``policy.decide`` → ``parser.parse`` (in an executor: CPU work off the event loop) → blobs + one DB
transaction (message rows, events, outbox) → ``250``. Nothing is answered 250 before it is durable;
any failure before that answers ``451 4.3.0`` and removes what was half written.

Zero-retention domains take another path (DESIGN.md "Invariants"): nothing is written at rest;
the webhooks are delivered during the session, 250 only when every endpoint answered 2xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Awaitable, Callable, Sequence

from delivery.links import LinkSigner
from delivery.sender import AsyncWebhookSender
from inbound import metrics
from inbound.auth.results_header import strip_own_results
from inbound.policy import Facts, decide
from inbound.prepare import BlobKeys, Prepared, prepare
from inbound.scan.headers import strip_forged
from inbound.scan.scanner import MessageScanner
from inbound.types import AuthResults, Decision, ScanResults, SmtpEnvelope
from inbound.zero_retention import ZeroRetentionDelivery
from parser import jsonbytes
from store.blobs import BlobStore
from store.db import Database
from store.domains import DomainInfo
from store.ids import new_id
from store.messages import NewTransaction, Recipient, StoredMessage, record_transaction_in
from store.writer import BatchWriter

log = logging.getLogger("mailkite.ingest")

REPLY_TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"

Authenticator = Callable[[SmtpEnvelope, bytes], Awaitable[AuthResults]]
# scan(envelope, raw, auth, domains): ``auth`` is the still-running authentication (a future: the
# scanner awaits it only where it needs the verdicts), ``domains`` the recipient domains (their
# scan policy: sender lists, fail-open). See inbound.scan.scanner for the ordering.
Scanner = Callable[[SmtpEnvelope, bytes, Awaitable[AuthResults], Sequence[DomainInfo]], Awaitable[ScanResults]]


async def no_authentication(envelope: SmtpEnvelope, raw: bytes) -> AuthResults:
    """The authenticator used until checks are configured: every verdict ``none``."""
    return AuthResults()


# The scanner used when no spam or virus engine is configured: ``unscanned``, sender lists applied.
no_scanning: Scanner = MessageScanner()


@dataclass
class IngestOutcome:
    """What happened to one transaction: the SMTP reply and the facts for the log line."""

    reply: str
    outcome: str  # accepted | rejected | deferred
    reason: str
    message_ids: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    auth: AuthResults | None = None
    scan: ScanResults | None = None
    parse_errors: int = 0


class IngestPipeline:
    """One per MX process. ``parse_executor`` None means the loop's default thread pool; ``writer``
    (default: one of its own) commits the rows, batching concurrent transactions."""

    def __init__(self, *, db: Database, blobs: BlobStore, links: LinkSigner, zr_sender: AsyncWebhookSender,
                 secret_box, parse_executor: Executor | None = None,
                 authenticate: Authenticator = no_authentication, scan: Scanner = no_scanning,
                 on_committed: Callable[[], None] | None = None,
                 on_stored: Callable[[list[StoredMessage]], None] | None = None,
                 writer: BatchWriter | None = None) -> None:
        self.db = db
        self.writer = writer or BatchWriter(db)
        self.blobs = blobs
        self.parse_executor = parse_executor
        self.authenticate = authenticate
        self.scan = scan
        self.on_committed = on_committed
        # Told what was stored once it is committed (the IMAP window's new-mail notification).
        self.on_stored = on_stored
        self.zero_retention = ZeroRetentionDelivery(db=db, sender=zr_sender, secret_box=secret_box)
        self.links = links

    async def run(self, envelope: SmtpEnvelope, raw: bytes, recipients: list[Recipient]) -> IngestOutcome:
        """Process one transaction; never raises (failures become a 451 outcome)."""
        timings: dict[str, float] = {}
        try:
            return await self._run(envelope, raw, recipients, timings)
        except Exception:  # noqa: BLE001 - the SMTP client gets a 4xx, the log gets the traceback
            log.exception("ingest.failed", extra={"kv": {"session": envelope.session_id}})
            metrics.MESSAGES.labels("deferred", "internal_error").inc()
            return IngestOutcome(REPLY_TEMPFAIL, "deferred", "internal_error", timings_ms=timings)

    async def _run(self, envelope: SmtpEnvelope, raw: bytes, recipients: list[Recipient],
                   timings: dict[str, float]) -> IngestOutcome:
        loop = asyncio.get_running_loop()
        with _timed(timings, "checks"):
            auth, scan = await self._checks(envelope, raw, recipients)
        decision = decide(Facts(domains=tuple(r.domain for r in recipients), auth=auth, scan=scan,
                                mail_from=envelope.mail_from))
        if decision.action != "accept":
            return self._refused(decision, timings, auth, scan)
        auth = auth.with_decision(decision.reason)
        if auth.authserv_id:
            # RFC 8601 §5: results claiming to be ours that arrived from outside are forgeries.
            raw = strip_own_results(raw, auth.authserv_id)
        raw = strip_forged(raw, scan.headers)  # incoming verdict fields of the kinds we add

        stored_raw = _with_trace_headers(raw, auth, scan)
        zr = [r for r in recipients if r.domain.zero_retention]
        kept = [r for r in recipients if not r.domain.zero_retention]
        # A local blob store is written by the parse process that holds the bytes (inbound/prepare.py).
        keys = BlobKeys.for_transaction(new_id("txn"), envelope.received_at) if kept else None
        in_parse = keys is not None and self.blobs.local_url is not None
        with _timed(timings, "parse"):
            # IMAP structures are computed on the bytes as stored, only when something is stored.
            try:
                prepared = await loop.run_in_executor(self.parse_executor, partial(
                    prepare, stored_raw, len(stored_raw) - len(raw), keep=bool(kept),
                    blobs=(self.blobs.local_url, keys) if in_parse else None, need_parsed=bool(zr) or not in_parse))
            except BaseException:
                if in_parse:
                    await asyncio.to_thread(self._delete_blobs, keys.raw, keys.parsed)
                raise
        facts = prepared.facts
        message_ids: list[str] = []

        if zr:
            with _timed(timings, "zero_retention_delivery"):
                # hashlib lets go of the GIL on large inputs: a thread keeps the loop free for a 10 MiB message
                received_sha256 = await asyncio.to_thread(lambda: hashlib.sha256(raw).hexdigest())
                delivered, zr_ids = await self.zero_retention.deliver(envelope, prepared.parsed, zr, auth, scan,
                                                                      received_sha256=received_sha256)
            if not delivered:
                if prepared.blobs_written:
                    await asyncio.to_thread(self._delete_blobs, keys.raw, keys.parsed)
                metrics.MESSAGES.labels("deferred", "webhook_unavailable").inc()
                return IngestOutcome("451 4.3.0 The receiving application did not accept the message; "
                                     "please try again later", "deferred", "webhook_unavailable",
                                     zr_ids, timings, auth, scan, len(facts.parse_errors))
            message_ids += zr_ids
        if kept:
            with _timed(timings, "store"):
                stored = await self._store(envelope, stored_raw, prepared, keys, kept, auth, scan)
            message_ids += [m.id for m in stored]
            if self.on_committed:
                self.on_committed()
            if self.on_stored:
                self.on_stored(stored)
        metrics.MESSAGES.labels("accepted", decision.reason).inc()
        metrics.MESSAGE_BYTES.observe(len(raw))
        return IngestOutcome(f"250 2.0.0 Ok: queued as {' '.join(message_ids)}", "accepted", decision.reason,
                             message_ids, timings, auth, scan, len(facts.parse_errors))

    async def _checks(self, envelope: SmtpEnvelope, raw: bytes,
                      recipients: list[Recipient]) -> tuple[AuthResults, ScanResults]:
        """Authentication and scanning, concurrently: the scanner gets the authentication as a
        future and awaits it only where it needs the verdicts (inbound.scan.scanner)."""
        auth_task = asyncio.ensure_future(self.authenticate(envelope, raw))
        try:
            scan = await self.scan(envelope, raw, auth_task, [r.domain for r in recipients])
            return await auth_task, scan
        finally:
            auth_task.cancel()  # no-op once done; stops it when the scan failed

    def _refused(self, decision: Decision, timings, auth, scan) -> IngestOutcome:
        outcome = "rejected" if decision.action == "reject" else "deferred"
        metrics.MESSAGES.labels(outcome, decision.reason).inc()
        reply = decision.reply or (REPLY_TEMPFAIL if outcome == "deferred" else "550 5.7.1 Message refused")
        return IngestOutcome(reply, outcome, decision.reason, [], timings, auth, scan)

    async def _store(self, envelope: SmtpEnvelope, stored_raw: bytes, prepared: Prepared, keys: BlobKeys,
                     recipients: list[Recipient], auth: AuthResults, scan: ScanResults) -> list[StoredMessage]:
        """Write both blobs unless the parse process did (in parallel, not yet synced), then the
        rows through the group-commit writer, which syncs the blob store once per batch before
        committing (``barrier``): the rows never point at bytes that are not durable. On any
        failure remove the blobs written, and raise."""
        try:
            if not prepared.blobs_written:
                def put_parsed() -> None:
                    self.blobs.put(keys.parsed, jsonbytes.dumps(prepared.parsed.to_json()), "application/json",
                                   sync=False)

                puts = await asyncio.gather(asyncio.to_thread(self.blobs.put, keys.raw, stored_raw,
                                                              "message/rfc822", sync=False),
                                            asyncio.to_thread(put_parsed), return_exceptions=True)
                for outcome in puts:
                    if isinstance(outcome, BaseException):
                        raise outcome
            facts = prepared.facts
            tx = NewTransaction(
                transaction_id=keys.transaction_id, recipients=recipients, mail_from=envelope.mail_from,
                client_ip=envelope.client_ip, helo=envelope.helo, tls=envelope.tls,
                received_at=envelope.received_at, size=len(stored_raw), sha256=facts.sha256,
                raw_key=keys.raw, parsed_key=keys.parsed, message_id_header=facts.message_id,
                in_reply_to=facts.in_reply_to, references=facts.references, thread_key=facts.thread_key,
                subject=facts.subject, from_address=facts.from_.address if facts.from_ else None,
                from_name=facts.from_.name if facts.from_ else None, date=facts.date,
                parse_errors=facts.parse_errors, auth=auth.to_json(), spam=scan.spam, virus=scan.virus,
                imap_structure=prepared.structure,
            )
            return await asyncio.wrap_future(self.writer.submit(lambda session: record_transaction_in(session, tx),
                                                                barrier=self.blobs.sync))
        except BaseException:
            await asyncio.to_thread(self._delete_blobs, keys.raw, keys.parsed)
            raise

    def _delete_blobs(self, *keys: str) -> None:
        for key in keys:
            try:
                self.blobs.delete(key)
            except Exception:  # noqa: BLE001 - best effort cleanup; the reply is 451 anyway
                log.warning("ingest.cleanup_failed", extra={"kv": {"blob": key}})

    def close(self) -> None:
        """Commit what is queued and stop the writer thread."""
        self.writer.close()


def _with_trace_headers(raw: bytes, auth: AuthResults, scan: ScanResults) -> bytes:
    """Prepend our trace fields (Authentication-Results, scan verdicts) to the stored copy."""
    fields = ([auth.header] if auth.header else []) + list(scan.headers)
    if not fields:
        return raw
    eol = b"\r\n" if b"\r\n" in raw[:4096] or not raw else b"\n"
    return b"".join(f.encode("utf-8").replace(b"\r\n", eol) + eol for f in fields) + raw


class _timed:
    """Context manager recording a stage's wall time (ms) and its Prometheus histogram."""

    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        elapsed = time.perf_counter() - self.start
        self.timings[self.stage] = round(elapsed * 1000, 2)
        metrics.STAGE_SECONDS.labels(self.stage).observe(elapsed)
        return False
