"""The webhook worker: the rq job that makes one delivery attempt, and the worker process loop.

One job = one attempt of one event: claim it (lease), build the body, sign it, POST it, record the
attempt, and schedule what follows (``delivery.outcome.classify``). rq runs jobs in-process
(``SimpleWorker``: forking per job costs ~100 ms, PERF-NOTES.md).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from delivery import metrics
from delivery.links import LinkSigner
from delivery.outcome import AttemptResult, Verdict, classify
from delivery.payload import event_body, message_data
from delivery.queue import webhook_queue
from delivery.relay import OutboxRelay
from delivery.sender import WebhookSender
from delivery.signing import webhook_headers
from store.blobs import BlobError, BlobStore
from store.crypto import SecretBox, SecretDecryptError
from store.db import Database
from store.endpoints import decrypt_secrets
from store.events import AttemptRecord, claim, record_attempt
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


_context: WorkerContext | None = None


def configure(ctx: WorkerContext) -> None:
    """Install the context that :func:`deliver_event` uses in this process."""
    global _context
    _context = ctx


def deliver_event(event_id: str, attempt: int) -> str:
    """rq job: attempt ``attempt`` (1-based) of event ``event_id``; returns the verdict or ``skipped``."""
    if _context is None:
        raise RuntimeError("delivery.worker.configure() was not called in this worker process")
    return attempt_delivery(_context, event_id, attempt)


def attempt_delivery(ctx: WorkerContext, event_id: str, attempt: int) -> str:
    """One attempt, end to end (see module docstring). Never raises for receiver behaviour."""
    claimed = claim(ctx.db, event_id, attempt, lease_s=ctx.timeout_s + LEASE_SLACK_S)
    if claimed is None:
        return "skipped"
    started_at = utcnow()
    try:
        parsed = json.loads(ctx.blobs.get(claimed.message.parsed_key)) if claimed.message.parsed_key else None
        secrets = decrypt_secrets(ctx.box, claimed.endpoint_secret_ciphertext)
        body = event_body(claimed.created_at, message_data(claimed.message, parsed, links=ctx.links))
        headers = webhook_headers(secrets, event_id, int(time.time()), body)
        result = ctx.sender.post(claimed.endpoint_url, body, headers)
    except (BlobError, SecretDecryptError, ValueError) as exc:
        result = AttemptResult(None, 0.0, f"could not build the event: {exc}")
    outcome = classify(result, attempt, ctx.schedule, ctx.rng)
    next_at = started_at + timedelta(seconds=outcome.delay_s) if outcome.delay_s is not None else None
    disabled = record_attempt(ctx.db, AttemptRecord(
        event_id=event_id, endpoint_id=claimed.endpoint_id, attempt=attempt, started_at=started_at,
        status_code=result.status_code, latency_ms=result.latency_ms, error=result.error,
        verdict=outcome.verdict.value, next_attempt_at=next_at))
    metrics.ATTEMPTS.labels(outcome.verdict.value).inc()
    metrics.ATTEMPT_SECONDS.observe(result.latency_ms / 1000)
    log.info("webhook.attempt", extra={"kv": {
        "event_id": event_id, "message_id": claimed.message.id, "endpoint_id": claimed.endpoint_id,
        "attempt": attempt, "status": result.status_code, "latency_ms": round(result.latency_ms, 1),
        "error": result.error, "outcome": outcome.verdict.value,
        "next_attempt_at": next_at.isoformat() if next_at else None,
        "endpoint_disabled": disabled,
    }})
    if outcome.verdict == Verdict.ENDPOINT_GONE or disabled:
        log.warning("webhook.endpoint_disabled", extra={"kv": {"endpoint_id": claimed.endpoint_id, "reason": disabled}})
    return outcome.verdict.value


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
