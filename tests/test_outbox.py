"""The outbox under several relays (the MX's and standalone workers'), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from store.domains import add_domain
from store.endpoints import add_endpoint
from store.crypto import SecretBox
from store.events import due_outbox, mark_queued, mark_queued_in
from store.ids import new_id
from store.messages import NewTransaction, Recipient, record_transaction
from store.models import Event, EventState, OutboxEntry
from tests.support.servers import wait_for_lock_waiter


def _accept(db, domain) -> str:
    inbox = f"support@{domain.name}"
    [stored] = record_transaction(db, NewTransaction(
        transaction_id=new_id("txn"), recipients=[Recipient(inbox, domain, (inbox,))], mail_from="a@x.test",
        client_ip="127.0.0.1", helo="x.test", tls=False, received_at=datetime.now(timezone.utc), size=10,
        sha256="0" * 64, raw_key=None, parsed_key=None))
    [event_id] = stored.event_ids
    return event_id


def test_a_relay_holding_stale_rows_never_deletes_a_newer_events_row(db) -> None:
    domain = add_domain(db, "outbox.test")
    add_endpoint(db, SecretBox(b"k" * 32), "http://127.0.0.1:9/hook", "whsec_" + "QUJD" * 8)
    first = _accept(db, domain)
    stale = due_outbox(db)  # relay A reads the row…
    lease = datetime.now(timezone.utc) + timedelta(seconds=30)
    mark_queued(db, {"job_b": due_outbox(db)}, lease)  # …relay B moves it first
    second = _accept(db, domain)  # a new event gets an outbox row
    mark_queued(db, {"job_a": stale}, lease)  # relay A finishes with what it read
    with db.read() as s:
        rows = set(s.scalars(select(OutboxEntry.event_id)))
        states = dict(s.execute(select(Event.id, Event.state)).all())
    assert rows == {second}  # the new event is still waiting to be relayed
    assert states == {first: EventState.QUEUED.value, second: EventState.PENDING.value}


def test_a_job_claims_only_events_waiting_for_its_attempt_and_records_them_together(db) -> None:
    from store.events import AttemptRecord, claim_many, record_attempts

    domain = add_domain(db, "claims.test")
    add_endpoint(db, SecretBox(b"k" * 32), "http://127.0.0.1:9/hook", "whsec_" + "QUJD" * 8)
    first, second, third = (_accept(db, domain) for _ in range(3))
    mark_queued(db, {"job_1": due_outbox(db)}, datetime.now(timezone.utc) + timedelta(seconds=30))  # the relay
    claimed = claim_many(db, [(first, 1), (second, 2), (third, 1)], lease_s=30)  # second: wrong attempt
    assert [c.event_id for c in claimed] == [first, third]
    assert claim_many(db, [(first, 1)], lease_s=30) == []  # taken already: a duplicate job gets nothing
    now = datetime.now(timezone.utc)
    disabled = record_attempts(db, [
        AttemptRecord(first, claimed[0].endpoint_id, 1, now, 200, 5.0, None, "delivered"),
        AttemptRecord(third, claimed[1].endpoint_id, 1, now, 500, 5.0, "HTTP 500", "retry",
                      next_attempt_at=now + timedelta(seconds=60)),
    ])
    assert disabled == {first: None, third: None}
    with db.read() as s:
        states = dict(s.execute(select(Event.id, Event.state)).all())
        waiting = set(s.scalars(select(OutboxEntry.event_id)))
    assert states == {first: EventState.DELIVERED.value, second: EventState.QUEUED.value,
                      third: EventState.PENDING.value}
    assert waiting == {third}  # the retry has its outbox row; the unclaimed one waits for its lease


def test_a_job_mixing_attempt_numbers_claims_each_event_once(db) -> None:
    from store.events import AttemptRecord, claim_many, record_attempts

    domain = add_domain(db, "mixed.test")
    add_endpoint(db, SecretBox(b"k" * 32), "http://127.0.0.1:9/hook", "whsec_" + "QUJD" * 8)
    retried = _accept(db, domain)
    [first] = claim_many(db, [(retried, 1)], lease_s=30)
    now = datetime.now(timezone.utc)
    record_attempts(db, [AttemptRecord(retried, first.endpoint_id, 1, now, 503, 5.0, "HTTP 503", "retry",
                                       next_attempt_at=now)])
    fresh = _accept(db, domain)
    # One job: the retry's second attempt, a fresh event's first, and a duplicate entry of each.
    claimed = claim_many(db, [(fresh, 1), (retried, 2), (fresh, 1), (retried, 2), (fresh, 2)], lease_s=30)
    assert [(c.event_id, c.attempt) for c in claimed] == [(fresh, 1), (retried, 2)]
    with db.read() as s:
        states = dict(s.execute(select(Event.id, Event.state)).all())
    assert states == {retried: EventState.DELIVERING.value, fresh: EventState.DELIVERING.value}


def test_a_worker_claiming_while_the_relay_marks_the_same_job_does_not_deadlock(db) -> None:
    """The relay enqueues a job, then marks its events queued (in the MX's group commit); a worker
    may claim the job meanwhile. Both lock the events' rows; they must take them in the same order
    (the job's), or PostgreSQL breaks the deadlock by failing one of them and the job's events wait
    for their lease (30 s). Seen in bench/ingest.py with a one-statement claim (rows locked in id
    order). SQLite has one writer at a time."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    from store.events import claim_many

    domain = add_domain(db, "locks.test")
    add_endpoint(db, SecretBox(b"k" * 32), "http://127.0.0.1:9/hook", "whsec_" + "QUJD" * 8)
    older, newer = _accept(db, domain), _accept(db, domain)
    due = sorted(due_outbox(db), key=lambda d: d.event_id, reverse=True)  # a job: newer id first
    assert [d.event_id for d in due] == [newer, older]
    worker: dict[str, object] = {}

    def claim() -> None:
        try:
            worker["claimed"] = [c.event_id for c in claim_many(db, [(d.event_id, 1) for d in due], lease_s=30)]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            worker["error"] = exc

    lease = datetime.now(timezone.utc) + timedelta(seconds=30)
    with db.session() as s:
        mark_queued_in(s, {"job_1": due[:1]}, lease)  # the relay holds the first event's row…
        t = threading.Thread(target=claim)
        t.start()
        wait_for_lock_waiter(db.engine, "the worker")  # …until the worker waits on a row lock
        mark_queued_in(s, {"job_1": due[1:]}, lease)  # …then marks the rest of the job
    t.join(20)
    assert "error" not in worker, worker.get("error")
    assert worker["claimed"] == [newer, older]
