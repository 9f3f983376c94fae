"""Threading at ingest (store.threads): JWZ-style msg-id links per account, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from sqlalchemy import select

from store.db import Database
from store.domains import DomainInfo, DomainPolicy, add_domain
from store.ids import new_id
from store.messages import NewTransaction, Recipient, get_message, record_transaction, record_transaction_in
from store.models import Account, Domain, Message, ThreadLink
from store.writer import BatchWriter
from tests.support.servers import wait_for_lock_waiter
from parser import parse


def _transaction(domain: DomainInfo, message_id: str | None, in_reply_to: str | None = None,
                 references: tuple[str, ...] = ()) -> NewTransaction:
    """One message as the pipeline hands it to the store (headers parsed from real bytes)."""
    lines = [f"From: a@{domain.name}", f"To: b@{domain.name}", "Subject: t"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append("References: " + " ".join(references))
    parsed = parse(("\r\n".join(lines) + "\r\n\r\nhello\r\n").encode())
    inbox = f"b@{domain.name}"
    return NewTransaction(
        transaction_id=new_id("txn"), recipients=[Recipient(inbox, domain, (inbox,))], mail_from="a@x.test",
        client_ip="127.0.0.1", helo="x.test", tls=False, received_at=datetime.now(timezone.utc), size=10,
        sha256=parsed.sha256, raw_key=None, parsed_key=None, message_id_header=parsed.message_id,
        in_reply_to=parsed.in_reply_to, references=parsed.references, thread_key=parsed.thread_key,
        create_events=False)


def _deliver(db: Database, domain: DomainInfo, message_id: str | None, in_reply_to: str | None = None,
             references: tuple[str, ...] = ()) -> str:
    """Store one message in a transaction of its own; its thread id."""
    [stored] = record_transaction(db, _transaction(domain, message_id, in_reply_to, references))
    return get_message(db, stored.id).thread_id


def test_reply_joins_its_original(db):
    d = add_domain(db, "threads.test")
    root = _deliver(db, d, "<a@x>")
    reply = _deliver(db, d, "<b@x>", "<a@x>", ("<a@x>",))
    deeper = _deliver(db, d, "<c@x>", "<b@x>", ("<a@x>", "<b@x>"))
    only_irt = _deliver(db, d, "<d@x>", "<c@x>")  # In-Reply-To only, no References
    assert root.startswith("thr_")
    assert root == reply == deeper == only_irt
    assert _deliver(db, d, "<other@x>") != root


def test_original_arriving_after_its_reply_joins_the_reply_thread(db):
    d = add_domain(db, "late.test")
    reply = _deliver(db, d, "<r@x>", "<o@x>", ("<o@x>",))
    original = _deliver(db, d, "<o@x>")
    assert original == reply


def test_two_threads_that_turn_out_to_be_one_merge_into_the_older(db):
    d = add_domain(db, "merge.test")
    first = _deliver(db, d, "<m1@x>")
    second = _deliver(db, d, "<m2@x>")
    assert first != second
    bridge = _deliver(db, d, "<m3@x>", "<m2@x>", ("<m1@x>", "<m2@x>"))
    assert bridge == first  # the thread created first survives
    with db.read() as s:
        threads = set(s.scalars(select(Message.thread_id).where(Message.domain_id == d.id)))
        links = set(s.scalars(select(ThreadLink.thread_id).where(ThreadLink.account_id == d.account_id)))
    assert threads == {first} and links == {first}  # rows and links re-pointed
    assert _deliver(db, d, "<m4@x>", "<m2@x>") == first


def _batch(db: Database, txs: list[NewTransaction]) -> list[str]:
    """Commit ``txs`` in ONE group-commit batch (the writer is held until all are queued); the
    stored message ids, in order."""
    gate, release = threading.Event(), threading.Event()

    def hold(session):
        gate.set()
        release.wait(10)

    writer = BatchWriter(db)
    try:
        writer.submit(hold)
        assert gate.wait(10)
        futures = [writer.submit(lambda session, tx=tx: record_transaction_in(session, tx)) for tx in txs]
        release.set()
        return [f.result(20)[0].id for f in futures]
    finally:
        writer.close()


def test_a_merge_inside_one_group_commit_batch_re_points_the_rows_of_that_batch(db):
    """The writer inserts a batch's message rows together at its end; a message that merges two
    threads must still re-point the rows of the batch's earlier messages."""
    d = add_domain(db, "batch.test")
    stored = _batch(db, [_transaction(d, "<b1@x>"), _transaction(d, "<b2@x>"),
                         _transaction(d, "<b3@x>", "<b2@x>", ("<b1@x>", "<b2@x>"))])
    threads = [get_message(db, m).thread_id for m in stored]
    assert len(set(threads)) == 1
    with db.read() as s:
        links = set(s.scalars(select(ThreadLink.thread_id).where(ThreadLink.account_id == d.account_id)))
    assert links == set(threads)


def test_messages_without_ids_each_get_their_own_thread(db):
    d = add_domain(db, "noid.test")
    assert _deliver(db, d, None) != _deliver(db, d, None)


def test_threads_are_per_account(db):
    mine = add_domain(db, "mine.test")
    with db.session() as s:
        s.add(Account(id="acc_other", name="other"))
        s.flush()
        s.add(Domain(id="dom_other", account_id="acc_other", name="theirs.test", zero_retention=False, policy={},
                     imap_uidvalidity=1, imap_next_uid=1))
    theirs = DomainInfo("dom_other", "acc_other", "theirs.test", False, True, DomainPolicy())
    a = _deliver(db, mine, "<same@x>")
    b = _deliver(db, theirs, "<reply@x>", "<same@x>", ("<same@x>",))
    assert a != b
    assert _deliver(db, theirs, "<same@x>") == b


def test_hostile_msg_ids_are_bounded(db):
    d = add_domain(db, "hostile.test")
    huge = "<" + "x" * 20000 + "@y>"
    refs = tuple(f"<r{i}@x>" for i in range(5000))
    t = _deliver(db, d, huge, huge, refs)
    assert t.startswith("thr_")
    with db.read() as s:
        count = len(s.scalars(select(ThreadLink.msgid_sha256).where(ThreadLink.account_id == d.account_id)).all())
    assert count <= 102  # own id, In-Reply-To and the newest 100 References
    assert _deliver(db, d, "<late@x>", "<r4999@x>") == t


def test_a_reply_joins_an_original_committed_in_the_same_batch(db):
    """Threads of a batch are linked together at its end: a later message of the batch must still
    see the ids an earlier one linked, in both directions (reply after original, original after
    reply), and join a thread already at rest."""
    d = add_domain(db, "samebatch.test")
    at_rest = _deliver(db, d, "<rest@x>")
    ids = _batch(db, [_transaction(d, "<o1@x>"), _transaction(d, "<r1@x>", "<o1@x>", ("<o1@x>",)),
                      _transaction(d, "<r2@x>", "<o2@x>", ("<o2@x>",)), _transaction(d, "<o2@x>"),
                      _transaction(d, "<r3@x>", "<rest@x>", ("<rest@x>",)), _transaction(d, "<alone@x>")])
    o1, r1, r2, o2, r3, alone = (get_message(db, i).thread_id for i in ids)
    assert o1 == r1 and r2 == o2 and r3 == at_rest
    assert len({o1, o2, at_rest, alone}) == 4
    assert _deliver(db, d, "<r4@x>", "<r1@x>") == o1  # the batch's links are at rest


def test_imap_uids_of_one_batch_ascend_in_commit_order_and_share_a_modseq(db):
    """One UPDATE reserves the UIDs of a whole batch (RFC 3501 §2.3.1.1: strictly ascending, in
    the order the transactions were committed); the batch's messages share one mod-sequence, above
    every earlier one (RFC 7162 §3.1)."""
    a, b = add_domain(db, "uid-a.test"), add_domain(db, "uid-b.test")
    [first] = record_transaction(db, _transaction(a, "<u0@x>"))
    two = _transaction(a, "<u2@x>")
    two.recipients = [Recipient("x@uid-b.test", b, ("x@uid-b.test",)), Recipient("y@uid-a.test", a, ("y@uid-a.test",))]
    ids = _batch(db, [_transaction(a, "<u1@x>"), two, _transaction(a, "<u3@x>"), _transaction(b, "<u4@x>")])
    with db.read() as s:
        rows = {m.id: m for m in s.scalars(select(Message))}
    by_tx: dict[str, list[tuple[str, int, int]]] = {}
    for m in rows.values():
        by_tx.setdefault(m.transaction_id, []).append((m.domain_id, m.imap_uid, m.modseq))
    u1, u2, u3, u4 = (sorted(by_tx[rows[i].transaction_id]) for i in ids)
    first_row = rows[first.id]
    assert first_row.imap_uid == 1
    assert [u[1] for u in u1 + [r for r in u2 if r[0] == a.id] + u3] == [2, 3, 4]
    assert [u[1] for u in [r for r in u2 if r[0] == b.id] + u4] == [1, 2]
    modseqs_a = {r[2] for r in u1 + u2 + u3 if r[0] == a.id}
    assert len(modseqs_a) == 1 and modseqs_a.pop() > first_row.modseq


def test_two_writers_linking_the_same_id_at_once_end_in_one_thread(db):
    """Two transactions link the same msg-id concurrently: the second chose its thread before the
    first committed, so its link insert finds the id taken. It must re-check and join the thread at
    rest, not keep a thread no link points to (PostgreSQL; SQLite has one writer at a time)."""
    d, other = add_domain(db, "race.test"), add_domain(db, "race-other.test")  # one account, two domains:
    second: dict[str, object] = {}  # the writers do not meet on a domain row's UID lock first

    def deliver_second():
        try:
            # different roots (References[0]): the two would name different new threads
            second["thread"] = _deliver(db, other, "<race-b@x>", "<race-a@x>", ("<root-b@x>",))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            second["error"] = exc

    with db.session() as s:
        [first] = record_transaction_in(s, _transaction(d, "<race-a@x>", None, ("<root-a@x>",)))
        t = threading.Thread(target=deliver_second)
        t.start()
        if db.engine.dialect.name == "postgresql":  # wait until its insert waits on our uncommitted link
            wait_for_lock_waiter(db.engine, "the second writer")
        else:
            time.sleep(0.3)
    t.join(20)
    assert "error" not in second, second.get("error")
    first_thread = get_message(db, first.id).thread_id
    assert second["thread"] == first_thread
    with db.read() as s:
        links = set(s.scalars(select(ThreadLink.thread_id).where(ThreadLink.account_id == d.account_id)))
    assert links == {first_thread}
