"""Webhook event state: outbox reads for the relay, claims with leases for workers, attempt log.

State machine (``EventState``)::

    pending ──relay──▶ queued ──worker claim──▶ delivering ──2xx──▶ delivered
       ▲                 │  lease expired,          │ failure, attempts left: outbox row at due time
       │                 │  job gone from Redis     ▼
       └─────────────────┴──────────────────────  pending        (no attempts left / 410) ─▶ failed

A claim is a conditional UPDATE (state, attempt number), so duplicate jobs (a relay that crashed
after enqueueing, a sweeper that re-enqueued) deliver at most once per attempt number; a worker that
dies mid-attempt leaves a lease that the sweeper expires, and the attempt is made again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, func, insert, literal_column, select, update

from sqlalchemy.orm import Session

from store.db import Database, one_of, pipelined
from store.endpoints import disable_endpoint
from store.errors import InvalidInput, NotFound
from store.messages import MessageRecord, NewTransaction, record_transaction_in
from store.models import (
    DeliveryAttempt,
    Domain,
    Event,
    EventState,
    Message,
    OutboxEntry,
    Retention,
    WebhookEndpoint,
    utcnow,
)

ENDPOINT_FAILURE_LIMIT = timedelta(days=5)


@dataclass(frozen=True)
class DueEvent:
    """An outbox row ready to go: the job to enqueue is (``event_id``, ``attempt``)."""

    outbox_id: int
    event_id: str
    attempt: int


@dataclass(frozen=True)
class ClaimedEvent:
    """Everything a worker needs for one attempt, as plain data."""

    event_id: str
    attempt: int
    created_at: datetime
    endpoint_id: str
    endpoint_url: str
    endpoint_secret_ciphertext: str
    message: MessageRecord


@dataclass(frozen=True)
class EventSummary:
    """An event as listed by ``mailkite events list``."""

    id: str
    message_id: str
    endpoint_id: str
    endpoint_url: str
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None


_OUTBOX = OutboxEntry.__table__
_DUE = (select(_OUTBOX.c.id, _OUTBOX.c.event_id, Event.__table__.c.attempts)
        .select_from(_OUTBOX.join(Event.__table__, Event.__table__.c.id == _OUTBOX.c.event_id))
        .where(_OUTBOX.c.due_at <= bindparam("b_now")).order_by(_OUTBOX.c.due_at, _OUTBOX.c.id)
        .limit(bindparam("b_limit")))
_DELETE_OUTBOX = {dialect: delete(_OUTBOX).where(among) for dialect, among in one_of(_OUTBOX.c.id, "b_ids").items()}
_MARK_QUEUED = (update(Event.__table__)
                .where(Event.__table__.c.id == bindparam("b_id"), Event.__table__.c.state == EventState.PENDING.value)
                .values(state=EventState.QUEUED.value, lease_until=bindparam("b_lease"), job_id=bindparam("b_job")))


def due_outbox(db: Database, *, limit: int = 500, now: datetime | None = None) -> list[DueEvent]:
    """Outbox rows whose time has come, oldest first."""
    with db.read() as s:
        rows = s.connection().execute(_DUE, {"b_now": now or utcnow(), "b_limit": limit}).all()
    return [DueEvent(r[0], r[1], r[2] + 1) for r in rows]


def mark_queued(db: Database, jobs: dict[str, list[DueEvent]], lease_until: datetime) -> None:
    """After a successful enqueue: drop the outbox rows and mark the events queued until
    ``lease_until``, each with the id of the job carrying it (``jobs``: job id → its events)."""
    if jobs:
        with db.session() as s:
            mark_queued_in(s, jobs, lease_until)


def mark_queued_in(s: Session, jobs: dict[str, list[DueEvent]], lease_until: datetime) -> None:
    """:func:`mark_queued` inside the caller's transaction (e.g. a group-commit batch)."""
    conn = s.connection()
    with pipelined(conn):  # one round trip for both (results unread)
        conn.execute(_DELETE_OUTBOX[conn.dialect.name], {"b_ids": [d.outbox_id for due in jobs.values() for d in due]})
        conn.execute(_MARK_QUEUED, [{"b_id": d.event_id, "b_lease": lease_until, "b_job": job}
                                    for job, due in jobs.items() for d in due])


def outbox_depth(db: Database) -> int:
    """Rows waiting in the outbox (due or not)."""
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(OutboxEntry)) or 0)


_EVENTS = Event.__table__
_ENDPOINTS = WebhookEndpoint.__table__
_MESSAGES = Message.__table__
_DOMAINS = Domain.__table__
# Prebuilt Core statements for the per-delivery hot path (claim, record a delivered attempt):
# building ORM statements per call cost more than the SQL (bench/ingest.py).
# One UPDATE per event, in the job's order: the relay marks a job's events queued in that order
# (mark_queued_in) and may still be doing so when a worker claims the job, so both take the rows'
# locks in the same order. One UPDATE … WHERE id = ANY(…) for the whole job locked them in id
# order instead, and PostgreSQL broke the resulting deadlocks by failing the claim, leaving the
# job's events to their lease (bench/ingest.py: some deliveries 31 s late; tests/test_outbox.py).
_CLAIM = (update(_EVENTS)
          .where(_EVENTS.c.id == bindparam("b_id"), _EVENTS.c.attempts == bindparam("b_before"),
                 _EVENTS.c.state.in_([EventState.PENDING.value, EventState.QUEUED.value]))
          .values(state=EventState.DELIVERING.value, lease_until=bindparam("b_lease")))
_CLAIMED = {dialect: select(_EVENTS.c.id.label("event_id"), _EVENTS.c.created_at.label("event_created_at"),
                   _ENDPOINTS.c.id.label("endpoint_id"), _ENDPOINTS.c.url.label("endpoint_url"),
                   _ENDPOINTS.c.secret_ciphertext.label("endpoint_secret"),
                   _ENDPOINTS.c.enabled.label("endpoint_enabled"),
                   _ENDPOINTS.c.disabled_reason.label("endpoint_disabled_reason"),
                   _DOMAINS.c.name.label("domain_name"), *_MESSAGES.c)
            .select_from(_EVENTS.join(_ENDPOINTS, _ENDPOINTS.c.id == _EVENTS.c.endpoint_id)
                         .join(_MESSAGES, _MESSAGES.c.id == _EVENTS.c.message_id)
                         .join(_DOMAINS, _DOMAINS.c.id == _MESSAGES.c.domain_id))
            .where(among) for dialect, among in one_of(_EVENTS.c.id, "b_ids").items()}
_INSERT_ATTEMPT = insert(DeliveryAttempt.__table__).inline()  # no RETURNING: store.db.pipelined
_EVENT_DELIVERED = (update(_EVENTS).where(_EVENTS.c.id == bindparam("b_id"))
                    .values(state=EventState.DELIVERED.value, attempts=bindparam("b_attempt"),
                            last_status_code=bindparam("b_status"), last_error=None, lease_until=None,
                            job_id=None, next_attempt_at=None, delivered_at=bindparam("b_now")))
_ENDPOINT_HEALTHY = (update(_ENDPOINTS)
                     .where(_ENDPOINTS.c.id == bindparam("b_id"), _ENDPOINTS.c.failing_since.is_not(None))
                     .values(failing_since=None))


def claim(db: Database, event_id: str, attempt: int, lease_s: float) -> ClaimedEvent | None:
    """Take event ``event_id`` for attempt number ``attempt`` (1-based); see :func:`claim_many`."""
    claimed = claim_many(db, [(event_id, attempt)], lease_s)
    return claimed[0] if claimed else None


def claim_many(db: Database, pairs: list[tuple[str, int]], lease_s: float) -> list[ClaimedEvent]:
    """Take each ``(event_id, attempt)`` (attempt 1-based) for ``lease_s`` seconds, in one transaction.

    Leaves out events not waiting for that attempt (already delivered, claimed by another worker,
    or a stale duplicate job), and fails those whose endpoint was disabled meanwhile. Not durable
    (``Database.session(durable=False)``): a claim lost in a crash only lets the event go again."""
    lease = utcnow() + timedelta(seconds=lease_s)
    with db.session(durable=False) as s:
        conn = s.connection()
        attempts: dict[str, int] = {}  # event id → the attempt claimed, in the job's order
        for event_id, attempt in pairs:
            if event_id not in attempts and conn.execute(
                    _CLAIM, {"b_id": event_id, "b_before": attempt - 1, "b_lease": lease}).rowcount == 1:
                attempts[event_id] = attempt
        if not attempts:
            return []
        claimed: dict[str, ClaimedEvent] = {}
        for row in conn.execute(_CLAIMED[conn.dialect.name], {"b_ids": list(attempts)}).mappings():
            if not row["endpoint_enabled"]:
                conn.execute(update(_EVENTS).where(_EVENTS.c.id == row["event_id"]).values(
                    state=EventState.FAILED.value, lease_until=None,
                    last_error=f"endpoint disabled: {row['endpoint_disabled_reason']}"))
                continue
            claimed[row["event_id"]] = ClaimedEvent(
                row["event_id"], attempts[row["event_id"]], row["event_created_at"], row["endpoint_id"],
                row["endpoint_url"], row["endpoint_secret"], MessageRecord.from_mapping(row, row["domain_name"]))
    return [claimed[event_id] for event_id in attempts if event_id in claimed]


@dataclass(frozen=True)
class AttemptRecord:
    """What the worker learned from one attempt, and what follows (``verdict`` as in
    ``delivery.outcome.Verdict`` values)."""

    event_id: str
    endpoint_id: str
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    verdict: str  # delivered | retry | failed | endpoint_disabled
    next_attempt_at: datetime | None = None


def record_attempt(db: Database, rec: AttemptRecord) -> str | None:
    """Log the attempt and move the event on; see :func:`record_attempts`."""
    return record_attempts(db, [rec])[rec.event_id]


def record_attempts(db: Database, recs: list[AttemptRecord]) -> dict[str, str | None]:
    """Log the attempts and move their events on, in one transaction. Returns, per event, the
    endpoint's disable reason if that attempt disabled it (410, or failing for
    :data:`ENDPOINT_FAILURE_LIMIT`), else None. Not durable (``Database.session(durable=False)``):
    records lost in a crash leave the events claimed, and their lease brings them back for another
    attempt with the same ``webhook-id`` (at least once, never lost)."""
    if not recs:
        return {}
    delivered = [rec for rec in recs if rec.verdict == "delivered"]
    with db.session(durable=False) as s:
        conn = s.connection()
        # The common case, delivered, in prebuilt statements run once for the job (executemany),
        # with the attempt rows in one round trip (results unread); a job's posts ran
        # concurrently, so its deliveries count before its failures.
        with pipelined(conn):
            conn.execute(_INSERT_ATTEMPT, [dict(
                event_id=rec.event_id, endpoint_id=rec.endpoint_id, attempt=rec.attempt, started_at=rec.started_at,
                status_code=rec.status_code, latency_ms=rec.latency_ms, error=rec.error, outcome=rec.verdict,
                next_attempt_at=rec.next_attempt_at) for rec in recs])
            if delivered:
                now = utcnow()
                conn.execute(_EVENT_DELIVERED, [{"b_id": rec.event_id, "b_attempt": rec.attempt,
                                                 "b_status": rec.status_code, "b_now": now} for rec in delivered])
                conn.execute(_ENDPOINT_HEALTHY, [{"b_id": endpoint_id} for endpoint_id
                                                 in dict.fromkeys(rec.endpoint_id for rec in delivered)])
        outcome = {rec.event_id: None for rec in delivered}
        for rec in recs:
            if rec.verdict != "delivered":
                outcome[rec.event_id] = _record_failure_in(s, rec)
        return {rec.event_id: outcome[rec.event_id] for rec in recs}


def _record_failure_in(s: Session, rec: AttemptRecord) -> str | None:
    """Move on the event of one attempt that did not deliver (its attempt row is written), inside
    the caller's transaction; returns the endpoint's disable reason, if any."""
    event = s.get(Event, rec.event_id)
    endpoint = s.get(WebhookEndpoint, rec.endpoint_id)
    if event is None or endpoint is None:
        return None
    event.attempts = rec.attempt
    event.last_status_code = rec.status_code
    event.last_error = rec.error
    event.lease_until = None
    event.job_id = None
    if endpoint.failing_since is None:
        endpoint.failing_since = rec.started_at
    disabled: str | None = None
    if rec.verdict == "endpoint_disabled":
        disabled = f"endpoint answered 410 Gone at {rec.started_at:%Y-%m-%d %H:%M:%SZ}"
    elif rec.started_at - endpoint.failing_since >= ENDPOINT_FAILURE_LIMIT:
        disabled = (f"every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M:%SZ} "
                    f"(last: {rec.error or rec.status_code})")
    if disabled:
        disable_endpoint(s, endpoint.id, disabled)
        event.state = EventState.FAILED.value
        event.next_attempt_at = None
        _fail_pending_for_endpoint(s, endpoint.id, disabled)
    elif rec.verdict == "retry" and rec.next_attempt_at is not None:
        event.state = EventState.PENDING.value
        event.next_attempt_at = rec.next_attempt_at
        s.add(OutboxEntry(event_id=event.id, due_at=rec.next_attempt_at))
    else:
        event.state = EventState.FAILED.value
        event.next_attempt_at = None
    return disabled


def _fail_pending_for_endpoint(s, endpoint_id: str, reason: str) -> None:
    waiting = [EventState.PENDING.value, EventState.QUEUED.value]
    ids = list(s.scalars(select(Event.id).where(Event.endpoint_id == endpoint_id, Event.state.in_(waiting))))
    if ids:
        s.execute(delete(OutboxEntry).where(OutboxEntry.event_id.in_(ids)))
        s.execute(update(Event).where(Event.id.in_(ids))
                  .values(state=EventState.FAILED.value, last_error=f"endpoint disabled: {reason}",
                          next_attempt_at=None, lease_until=None))


def expired_leases(db: Database, *, now: datetime | None = None,
                   limit: int = 500) -> list[tuple[str, str, int, str | None]]:
    """``(event_id, state, attempt, job_id)`` of queued or delivering events whose lease has run out."""
    now = now or utcnow()
    with db.read() as s:
        rows = s.execute(
            select(Event.id, Event.state, Event.attempts, Event.job_id)
            .where(Event.state.in_([EventState.QUEUED.value, EventState.DELIVERING.value]),
                   Event.lease_until.is_not(None), Event.lease_until < now)
            .limit(limit)
        ).all()
    return [(r[0], r[1], r[2] + 1, r[3]) for r in rows]


def extend_lease(db: Database, event_ids: list[str], lease_until: datetime) -> None:
    """Push the lease of still-queued events forward (their job is alive in the queue)."""
    if event_ids:
        with db.session() as s:
            s.execute(update(Event).where(Event.id.in_(event_ids), Event.state == EventState.QUEUED.value)
                      .values(lease_until=lease_until))


def requeue(db: Database, event_ids: list[str], *, now: datetime | None = None) -> int:
    """Put expired queued/delivering events back in the outbox, due now; returns how many moved."""
    now = now or utcnow()
    moved = 0
    with db.session() as s:
        for event_id in event_ids:
            n = s.execute(update(Event).where(
                Event.id == event_id,
                Event.state.in_([EventState.QUEUED.value, EventState.DELIVERING.value]),
                and_(Event.lease_until.is_not(None), Event.lease_until < now),
            ).values(state=EventState.PENDING.value, lease_until=None)).rowcount
            if n:
                s.add(OutboxEntry(event_id=event_id, due_at=now))
                moved += 1
    return moved


def list_events(db: Database, *, failed_only: bool = False, limit: int = 100) -> list[EventSummary]:
    """Newest events first."""
    with db.read() as s:
        q = (select(Event, WebhookEndpoint.url).join(WebhookEndpoint, WebhookEndpoint.id == Event.endpoint_id)
             .order_by(Event.created_at.desc(), Event.id.desc()).limit(limit))
        if failed_only:
            q = q.where(Event.state == EventState.FAILED.value)
        return [EventSummary(e.id, e.message_id, e.endpoint_id, url, e.state, e.attempts, e.last_status_code,
                             e.last_error, e.created_at, e.next_attempt_at) for e, url in s.execute(q)]


def replay(db: Database, event_id: str) -> None:
    """Send a failed or delivered event again, on a fresh schedule (same ``webhook-id``).

    Raises :class:`NotFound`, or :class:`InvalidInput` when the event is still in flight or its
    endpoint is disabled, or the message content is gone."""
    with db.session() as s:
        event = s.get(Event, event_id)
        if event is None:
            raise NotFound(f"no event {event_id}")
        if event.state not in (EventState.FAILED.value, EventState.DELIVERED.value):
            raise InvalidInput(f"event {event_id} is {event.state}; only failed or delivered events can be replayed")
        endpoint = s.get(WebhookEndpoint, event.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            raise InvalidInput(f"endpoint {event.endpoint_id} is disabled; enable it first "
                               f"('mailkite webhook enable {event.endpoint_id}')")
        message = s.get(Message, event.message_id)
        if message is None or message.parsed_key is None:
            raise InvalidInput(f"message {event.message_id} has no stored content (zero-retention); nothing to replay")
        event.state = EventState.PENDING.value
        event.attempts = 0
        event.next_attempt_at = None
        event.lease_until = None
        s.add(OutboxEntry(event_id=event.id, due_at=utcnow()))


def attempts_for(db: Database, event_id: str) -> list[DeliveryAttempt]:
    """The attempt log of one event, oldest first."""
    with db.read() as s:
        return list(s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.event_id == event_id)
                              .order_by(DeliveryAttempt.id)))


@dataclass(frozen=True)
class InlineAttempt:
    """One in-session delivery of a zero-retention message (ids, time, status; never content).
    ``attempt`` counts the sending server's tries of the same message for this endpoint (1, 2, …)."""

    event_id: str
    message_id: str
    endpoint_id: str
    started_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    attempt: int = 1

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class EarlierEvent:
    """What an earlier try of a zero-retention message left for one endpoint."""

    event_id: str
    delivered: bool
    attempts: int


@dataclass(frozen=True)
class EarlierInlineDelivery:
    """An earlier try of the same zero-retention message for one inbox: its message id and, per
    endpoint id, its event."""

    message_id: str
    events: dict[str, EarlierEvent]


_EARLIER_MESSAGES = (
    select(Message.id, Message.inbox, Message.domain_id)
    # The retention test as a literal in the SQL text: only then can a planner prove the partial
    # index's WHERE (migration 0008); a bound parameter cannot (SQLite, PostgreSQL's generic plans,
    # which psycopg's prepared statements get). EXPLAIN shows an index search on both.
    .where(Message.retention == literal_column(f"'{Retention.ZERO_RETENTION.value}'"),
           Message.sha256 == bindparam("sha256"),
           Message.mail_from == bindparam("mail_from"), Message.received_at >= bindparam("since"))
    .order_by(Message.received_at.desc(), Message.id.desc()))


def earlier_inline_deliveries(s: Session, *, sha256: str, mail_from: str, inboxes: list[tuple[str, str]],
                              since: datetime) -> dict[str, EarlierInlineDelivery]:
    """The latest earlier try, received at or after ``since``, of a zero-retention message with this
    hash (of the bytes as received) and envelope sender, per ``(domain id, inbox)`` of ``inboxes``:
    ``{inbox: EarlierInlineDelivery}``, inboxes never tried left out. Read in the caller's session:
    one indexed query (the partial index on ``sha256``, migration 0008) plus one for the events."""
    wanted = set(inboxes)
    found: dict[str, str] = {}  # inbox → message id
    for msg_id, inbox, domain_id in s.execute(_EARLIER_MESSAGES, {"sha256": sha256, "mail_from": mail_from,
                                                                  "since": since}):
        if (domain_id, inbox) in wanted and inbox not in found:
            found[inbox] = msg_id
    if not found:
        return {}
    events: dict[str, dict[str, EarlierEvent]] = {msg_id: {} for msg_id in found.values()}
    for evt_id, msg_id, endpoint_id, state, attempts in s.execute(
            select(Event.id, Event.message_id, Event.endpoint_id, Event.state, Event.attempts)
            .where(Event.message_id.in_(list(events)))):
        events[msg_id][endpoint_id] = EarlierEvent(evt_id, state == EventState.DELIVERED.value, attempts)
    return {inbox: EarlierInlineDelivery(msg_id, events[msg_id]) for inbox, msg_id in found.items()}


def record_inline_deliveries(db: Database, tx: NewTransaction, attempts: list[InlineAttempt],
                             earlier: dict[str, EarlierInlineDelivery] | None = None) -> None:
    """Keep the metadata of a zero-retention transaction: message rows without content (``tx`` has
    ``retention=zero_retention``), one event per endpoint with its latest state, and the attempt log.

    For the inboxes in ``earlier`` (a retry by the sending server, found with
    :func:`earlier_inline_deliveries`) the earlier message row takes the new status and the earlier
    events the new attempts; new rows are made only for what is new."""
    earlier = earlier or {}
    known_events = {e.event_id for d in earlier.values() for e in d.events.values()}
    now = utcnow()
    with db.session() as s:
        new_recipients = [(r, m) for r, m in zip(tx.recipients, tx.message_ids or []) if r.inbox not in earlier]
        if new_recipients:
            record_transaction_in(s, replace(tx, recipients=[r for r, _ in new_recipients],
                                             message_ids=[m for _, m in new_recipients]))
        retried = [d.message_id for d in earlier.values()]
        if retried:
            s.execute(update(Message).where(Message.id.in_(retried)).values(status=tx.status.value))
        for a in attempts:
            state = EventState.DELIVERED.value if a.ok else EventState.FAILED.value
            values = dict(state=state, attempts=a.attempt, delivered_at=now if a.ok else None,
                          last_status_code=a.status_code, last_error=a.error)
            if a.event_id in known_events:
                s.execute(update(Event).where(Event.id == a.event_id).values(**values))
            else:
                s.add(Event(id=a.event_id, account_id=tx.recipients[0].domain.account_id, message_id=a.message_id,
                            endpoint_id=a.endpoint_id, created_at=tx.received_at, **values))
        s.flush()  # events before their attempts: the models declare no relationships to order by
        for a in attempts:
            s.add(DeliveryAttempt(event_id=a.event_id, endpoint_id=a.endpoint_id, attempt=a.attempt,
                                  started_at=a.started_at, status_code=a.status_code, latency_ms=a.latency_ms,
                                  error=a.error, outcome="delivered" if a.ok else "deferred"))
