"""The webhook worker: the rq job that makes one delivery attempt, and the worker process loop.

One job = one attempt of each of up to ``BATCH_SIZE`` events: claim them (leases, one
transaction), build each body, sign it and POST it (concurrently, one pooled httpx client), record
the attempts (one transaction), and schedule what follows (``delivery.outcome.classify``). rq runs
jobs in-process (``SimpleWorker``: forking per job costs ~100 ms, PERF-NOTES.md); batching spreads
rq's own per-job bookkeeping, which cost about as much as a delivery.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from delivery import metrics
from delivery.links import LinkSigner
from delivery.outcome import AttemptResult, classify
from delivery.payload import event_body, message_data
from delivery.queue import BATCH_SIZE, webhook_queue
from delivery.relay import OutboxRelay
from delivery.sender import WebhookSender
from delivery.signing import webhook_headers
from parser import jsonbytes
from store.blobs import BlobError, BlobStore
from store.crypto import SecretBox, SecretDecryptError
from store.db import Database
from store.endpoints import decrypt_secrets
from store.events import AttemptRecord, ClaimedEvent, claim_many, record_attempts
from store.models import utcnow

log = logging.getLogger("mailkite.delivery")

LEASE_SLACK_S = 10.0


@dataclass
class WorkerContext:
    """What a worker process needs to deliver. ``schedule``: retry delays in seconds."""

    db: Database
    blobs: BlobStore
    box: SecretBox
    links: LinkSigner
    sender: WebhookSender
    schedule: tuple[float, ...]
    timeout_s: float
    rng: random.Random = field(default_factory=random.Random)
    # One thread per event of a job: a job's events are posted at once (one slow endpoint costs a
    # job at most one timeout), over the one pooled httpx client.
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(BATCH_SIZE, "mk-post"))


_context: WorkerContext | None = None


def configure(ctx: WorkerContext) -> None:
    """Install the context that :func:`deliver_event` uses in this process."""
    global _context
    _context = ctx


def deliver_events(pairs: list[list]) -> dict[str, str]:
    """rq job: the attempts ``[[event_id, attempt], …]`` (attempt 1-based), delivered concurrently;
    returns event id → verdict for the events this job claimed."""
    if _context is None:
        raise RuntimeError("delivery.worker.configure() was not called in this worker process")
    return attempt_deliveries(_context, [(str(event_id), int(attempt)) for event_id, attempt in pairs])


def deliver_event(event_id: str, attempt: int) -> str:
    """rq job of one event (jobs queued by earlier versions); see :func:`deliver_events`."""
    return deliver_events([[event_id, attempt]]).get(event_id, "skipped")


def attempt_deliveries(ctx: WorkerContext, pairs: list[tuple[str, int]]) -> dict[str, str]:
    """Claim the events, POST them concurrently, record every attempt in one transaction, schedule
    what follows (``delivery.outcome.classify``). Never raises for receiver behaviour."""
    claimed = claim_many(ctx.db, pairs, lease_s=ctx.timeout_s + LEASE_SLACK_S)
    if not claimed:
        return {}
    posted = list(ctx.pool.map(lambda c: _post(ctx, c), claimed))
    records = []
    for c, (started_at, result) in zip(claimed, posted):
        outcome = classify(result, c.attempt, ctx.schedule, ctx.rng)
        next_at = started_at + timedelta(seconds=outcome.delay_s) if outcome.delay_s is not None else None
        records.append(AttemptRecord(
            event_id=c.event_id, endpoint_id=c.endpoint_id, attempt=c.attempt, started_at=started_at,
            status_code=result.status_code, latency_ms=result.latency_ms, error=result.error,
            verdict=outcome.verdict.value, next_attempt_at=next_at))
    disabled = record_attempts(ctx.db, records)
    for c, rec in zip(claimed, records):
        metrics.ATTEMPTS.labels(rec.verdict).inc()
        metrics.ATTEMPT_SECONDS.observe(rec.latency_ms / 1000)
        log.info("webhook.attempt", extra={"kv": {
            "event_id": c.event_id, "message_id": c.message.id, "endpoint_id": c.endpoint_id,
            "attempt": c.attempt, "status": rec.status_code, "latency_ms": round(rec.latency_ms, 1),
            "error": rec.error, "outcome": rec.verdict,
            "next_attempt_at": rec.next_attempt_at.isoformat() if rec.next_attempt_at else None,
            "endpoint_disabled": disabled[c.event_id],
        }})
        if disabled[c.event_id]:
            log.warning("webhook.endpoint_disabled", extra={"kv": {"endpoint_id": c.endpoint_id,
                                                                   "reason": disabled[c.event_id]}})
    return {rec.event_id: rec.verdict for rec in records}


def _post(ctx: WorkerContext, claimed: ClaimedEvent) -> tuple[datetime, AttemptResult]:
    """Build, sign and POST one event (runs in the worker's thread pool)."""
    started_at = utcnow()
    try:
        parsed = jsonbytes.loads(ctx.blobs.get(claimed.message.parsed_key)) if claimed.message.parsed_key else None
        secrets = decrypt_secrets(ctx.box, claimed.endpoint_secret_ciphertext)
        body = event_body(claimed.created_at, message_data(claimed.message, parsed, links=ctx.links))
        headers = webhook_headers(secrets, claimed.event_id, int(time.time()), body)
        return started_at, ctx.sender.post(claimed.endpoint_url, body, headers)
    except (BlobError, SecretDecryptError, ValueError) as exc:
        return started_at, AttemptResult(None, 0.0, f"could not build the event: {exc}")


def run_worker(ctx: WorkerContext, conn: redis.Redis, *, with_relay: bool = True, burst: bool = False,
               name: str | None = None) -> None:
    """Run an rq worker on the webhook queue until stopped (SIGTERM/SIGINT: rq's warm shutdown).

    ``with_relay`` also runs an outbox relay thread (retries come due even without an MX process).
    """
    configure(ctx)
    queue = webhook_queue(conn)
    stop = threading.Event()
    relay_thread = None
    if with_relay:
        relay = OutboxRelay(ctx.db, queue, job_timeout=int(ctx.timeout_s + 60),
                            on_relayed=lambda n: metrics.RELAYED.inc(n))
        relay_thread = threading.Thread(target=relay.run, args=(stop,), name="outbox-relay", daemon=True)
        relay_thread.start()
    worker = SimpleWorker([queue], connection=conn, serializer=JSONSerializer, name=name)
    try:
        worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
    finally:
        stop.set()
        if relay_thread is not None:
            relay_thread.join(timeout=5)
        ctx.sender.close()
