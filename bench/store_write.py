"""Ingest transaction cost in the group-commit writer: CPU and wall time per SMTP transaction when
the writer commits them in batches of B (message row, IMAP UID, thread links, event and outbox rows:
``store.messages.record_transaction_in`` through ``store.writer.BatchWriter``). Then the webhook
worker's bookkeeping per event, for rq jobs of J events: the claim (``store.events.claim_many``) and
the record of a delivered attempt (``store.events.record_attempts``), without the POST.

The MX's writer thread shares the MX process's GIL with the SMTP event loop, so its CPU per
transaction is what ingest pays on top of parsing; the batch size under load is the number of
transactions waiting when the previous commit ends. Prints figures; asserts nothing. Usage::

    .venv/bin/python bench/store_write.py [--db sqlite,postgresql] [--batches 1,4,16] [--transactions 1600]
                                          [--jobs 1,8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from store.crypto import SecretBox  # noqa: E402
from store.db import Database  # noqa: E402
from store.domains import DomainInfo, add_domain  # noqa: E402
from store.endpoints import add_endpoint  # noqa: E402
from store.events import AttemptRecord, claim_many, record_attempts  # noqa: E402
from store.models import Event, EventState, utcnow  # noqa: E402
from store.ids import new_id  # noqa: E402
from store.messages import NewTransaction, Recipient, record_transaction_in  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.writer import BatchWriter  # noqa: E402
from tests.support.servers import PostgresDatabase  # noqa: E402


def transaction(domain: DomainInfo, i: int) -> NewTransaction:
    """One accepted message for one recipient, with the columns an ingest fills (a reply: three msg-ids)."""
    now = datetime.now(timezone.utc)
    return NewTransaction(
        transaction_id=new_id("txn"), recipients=[Recipient("support@example.com", domain, ("support@example.com",))],
        mail_from="sender@sender.test", client_ip="127.0.0.1", helo="bench.test", tls=False, received_at=now,
        size=30_000, sha256="ab" * 32, raw_key=f"raw/{i}", parsed_key=f"parsed/{i}",
        message_id_header=f"<{i}.{time.time_ns()}@bench.test>", in_reply_to=f"<{i}.parent@bench.test>",
        references=[f"<{i}.root@bench.test>", f"<{i}.parent@bench.test>"], thread_key=f"<{i}.root@bench.test>",
        subject="invoice order delivery", from_address="ana@sender.test", from_name="Ana", date=now,
        auth={"spf": {"result": "none"}, "dkim": [], "dmarc": {"result": "none"}}, spam={"score": 0.0},
        virus={"result": "skipped"})


def measure(db: Database, domain: DomainInfo, batch: int, count: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per transaction, committing ``count`` transactions in batches of ``batch``."""
    writer = BatchWriter(db)

    def one_batch(start: int) -> None:
        held, release = threading.Event(), threading.Event()
        writer.submit(lambda session: (held.set(), release.wait(10)))  # queue the whole batch behind it
        held.wait(10)
        futures = [writer.submit(lambda session, tx=transaction(domain, start + k): record_transaction_in(session, tx))
                   for k in range(batch)]
        release.set()
        for f in futures:
            f.result(60)

    try:
        for k in range(5):
            one_batch(-batch * (k + 1))  # warm-up: statement caches, connections
        done = 0
        cpu, wall = time.process_time(), time.perf_counter()
        while done < count:
            one_batch(done)
            done += batch
        return (time.process_time() - cpu) * 1000 / done, (time.perf_counter() - wall) * 1000 / done
    finally:
        writer.close()


def measure_worker(db: Database, job: int) -> tuple[float, float, int]:
    """(CPU ms, wall ms) per event, claiming and recording the pending first attempts in jobs of
    ``job`` events, and how many events that was."""
    with db.read() as s:
        pending = list(s.scalars(select(Event.id).where(Event.state == EventState.PENDING.value, Event.attempts == 0)
                                 .order_by(Event.id)))
    done = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(pending) - len(pending) % job, job):
        claimed = claim_many(db, [(event_id, 1) for event_id in pending[start:start + job]], lease_s=30)
        now = utcnow()
        record_attempts(db, [AttemptRecord(c.event_id, c.endpoint_id, 1, now, 200, 1.0, None, "delivered")
                             for c in claimed])
        done += len(claimed)
    return (time.process_time() - cpu) * 1000 / max(done, 1), (time.perf_counter() - wall) * 1000 / max(done, 1), done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--transactions", type=int, default=1600)
    ap.add_argument("--jobs", default="1,8", help="events per rq job for the worker's bookkeeping")
    args = ap.parse_args()
    print("group-commit writer: per ingest transaction (1 recipient, 1 endpoint, 3 msg-ids)")
    print(f"{'database':12s} {'batch':>5s} {'CPU ms':>8s} {'wall ms':>8s}")
    for kind in args.db.split(","):
        pg = None
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "postgresql":
                pg = PostgresDatabase()
                pg.create()
                url = pg.url
            else:
                url = f"sqlite:///{tmp}/mailkite.db"
            db = Database(url)
            try:
                upgrade(db)
                domain = add_domain(db, "example.com")
                add_endpoint(db, SecretBox(b"k" * 32), "http://127.0.0.1:9/hook", "whsec_" + "A" * 32)
                for batch in (int(b) for b in args.batches.split(",")):
                    cpu, wall = measure(db, domain, batch, args.transactions)
                    print(f"{kind:12s} {batch:5d} {cpu:8.3f} {wall:8.3f}")
                for job in (int(j) for j in args.jobs.split(",")):
                    measure(db, domain, 16, 16 * 40)  # events to claim: the writer's own are used up
                    cpu, wall, events = measure_worker(db, job)
                    print(f"{kind:12s} worker, jobs of {job:2d}: {cpu:8.3f} CPU ms {wall:8.3f} wall ms per event"
                          f" ({events} events)")
            finally:
                db.dispose()
                if pg:
                    pg.drop()


if __name__ == "__main__":
    main()
