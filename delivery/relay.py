"""The outbox relay: moves due outbox rows into the rq queue, and sweeps expired leases.

Runs as a thread in the MX role (woken right after each commit) and in standalone workers (polling).
If Redis is down, rows simply stay in the outbox and are moved when it is back; if Redis loses
jobs (a restart without persistence) or a worker dies mid-attempt, the sweeper finds the events whose
lease ran out and puts them back in the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Callable

from rq import Queue

from delivery.queue import QueueUnavailable, enqueue, job_waiting
from store.db import Database
from store.events import due_outbox, expired_leases, extend_lease, mark_queued, mark_queued_in, requeue
from store.models import EventState, utcnow
from store.writer import BatchWriter

log = logging.getLogger("mailkite.relay")

QUEUE_LEASE_S = 30.0
SWEEP_EVERY_S = 5.0
BATCH = 500
# Under heavy load (the last pass moved at least GATHER_FROM events), a wake-up waits GATHER_S
# before the next pass, so each rq job carries more events: rq's own bookkeeping costs ~4 ms of
# worker CPU per job, whatever it carries (bench/ingest.py: 4.3 events per job without it). At
# moderate rates passes stay immediate: the wait would only add latency.
GATHER_S = 0.03
GATHER_FROM = 4


class OutboxRelay:
    """``queue``: the webhook queue; ``job_timeout``: seconds rq lets one job run; ``writer``: the
    process's group-commit writer, if it has one (the MX does)."""

    def __init__(self, db: Database, queue: Queue, *, job_timeout: int, queue_lease_s: float = QUEUE_LEASE_S,
                 on_relayed: Callable[[int], None] | None = None, writer: BatchWriter | None = None,
                 gather_s: float = GATHER_S) -> None:
        self.db = db
        self.gather_s = gather_s
        self.writer = writer
        self.queue = queue
        self.job_timeout = job_timeout
        self.queue_lease_s = queue_lease_s
        self.on_relayed = on_relayed
        self.wake = threading.Event()
        self._redis_down = False

    def relay_once(self) -> int:
        """Enqueue every due outbox row (in batches); returns how many went. Raises :class:`QueueUnavailable`."""
        total = 0
        while True:
            due = due_outbox(self.db, limit=BATCH)
            if not due:
                return total
            jobs = enqueue(self.queue, due, job_timeout=self.job_timeout)
            lease = utcnow() + timedelta(seconds=self.queue_lease_s)
            if self.writer is not None:
                # Ride along with the next group commit instead of taking the write lock alone.
                self.writer.submit(lambda session, jobs=jobs: mark_queued_in(session, jobs, lease)).result()
            else:
                mark_queued(self.db, jobs, lease)
            total += len(due)
            if self.on_relayed:
                self.on_relayed(len(due))
            if len(due) < BATCH:
                return total

    def sweep_once(self) -> int:
        """Re-queue events whose lease expired and whose job is gone; returns how many were re-queued."""
        expired = expired_leases(self.db)
        if not expired:
            return 0
        lost, alive = [], []
        for event_id, state, _attempt, job in expired:
            if state == EventState.QUEUED.value and job and job_waiting(self.queue, job):
                alive.append(event_id)
            else:
                lost.append(event_id)
        extend_lease(self.db, alive, utcnow() + timedelta(seconds=self.queue_lease_s))
        moved = requeue(self.db, lost)
        if moved:
            log.warning("relay.requeued", extra={"kv": {"events": moved}})
        return moved

    def run(self, stop: threading.Event, *, poll_s: float = 1.0) -> None:
        """Loop until ``stop`` is set: relay on every wake-up or ``poll_s`` seconds, sweep every few seconds."""
        last_sweep = 0.0
        backoff = poll_s
        moved = 0
        while not stop.is_set():
            if moved >= GATHER_FROM:
                stop.wait(self.gather_s)  # heavy load: let this pass collect more (GATHER_S)
            self.wake.clear()  # a wake-up that arrives while we work makes the next wait return at once
            try:
                moved = self.relay_once()
                now = time.monotonic()
                if now - last_sweep >= SWEEP_EVERY_S:
                    self.sweep_once()
                    last_sweep = now
                if self._redis_down:
                    log.warning("relay.redis_back")
                    self._redis_down = False
                backoff = poll_s
            except QueueUnavailable as exc:
                moved = 0
                if not self._redis_down:
                    log.error("relay.redis_down", extra={"kv": {"error": str(exc)}})
                    self._redis_down = True
                backoff = min(backoff * 2, 5.0)
            except Exception:  # noqa: BLE001 - keep relaying whatever happens (DB hiccup, …)
                moved = 0
                log.exception("relay.error")
                backoff = min(backoff * 2, 5.0)
            self.wake.wait(backoff)
