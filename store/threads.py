"""Threading at ingest (RFC 5322 §3.6.4, JWZ-style): which conversation a message belongs to.

Every msg-id a message carries — its own Message-ID, its In-Reply-To and its References — is linked
to one thread per account (table ``thread_links``). A new message joins the thread any of its ids is
already linked to, and links all of its ids there; so a reply joins its original, and an original
that arrives after its reply joins the reply's thread (the reply linked the original's id). The
thread id of a brand-new conversation is the hash of its root id (``thread_id_for``), the same id a
zero-retention message (which leaves no links at rest) gets.

When a message links two threads that were separate until then (a reply that quotes ids from both),
they become one: the thread created first survives, and the links and message rows of the others
are re-pointed to it in the same transaction. Webhooks already delivered carried the old id.

JWZ's subject grouping (step 5 of https://www.jwz.org/doc/threading.html) is deliberately not done:
equal subjects ("Hello", "Invoice") join strangers' conversations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.db import one_of
from store.models import Message, ThreadLink, utcnow

#: References kept per message (the newest ones; RFC 5322 §3.6.4 lets the list grow without bound).
MAX_REFERENCES = 100


def thread_id_for(account_id: str, thread_key: str | None, fallback: str) -> str:
    """The account-scoped ``thr_`` id of a thread key (a root msg-id), or of ``fallback`` without one."""
    basis = thread_key or fallback
    return "thr_" + hashlib.sha256(f"{account_id}\0{basis}".encode()).hexdigest()[:26]


def _sha(msgid: str) -> str:
    return hashlib.sha256(msgid.encode("utf-8", "surrogateescape")).hexdigest()


def message_ids_of(message_id: str | None, in_reply_to: str | None, references: list[str]) -> list[str]:
    """The distinct msg-ids a message carries, own first, then In-Reply-To, then the newest References."""
    ids = [message_id, in_reply_to, *reversed(references[-MAX_REFERENCES:])]
    return list(dict.fromkeys(i for i in ids if i))


_LINKS = ThreadLink.__table__
_MESSAGES = Message.__table__
# Prebuilt Core statements (this runs in every ingest transaction).
_THREADS_OF = {dialect: select(_LINKS.c.msgid_sha256, _LINKS.c.thread_id, _LINKS.c.created_at)
               .where(_LINKS.c.account_id == bindparam("account_id"), among)
               for dialect, among in one_of(_LINKS.c.msgid_sha256, "shas").items()}
_RELINK = (update(_LINKS).where(_LINKS.c.account_id == bindparam("b_account"),
                                _LINKS.c.thread_id.in_(bindparam("b_losers", expanding=True)))
           .values(thread_id=bindparam("b_winner")))
_REPOINT_MESSAGES = (update(_MESSAGES).where(_MESSAGES.c.account_id == bindparam("b_account"),
                                             _MESSAGES.c.thread_id.in_(bindparam("b_losers", expanding=True)))
                     .values(thread_id=bindparam("b_winner")))
_IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound-parameter limit
_INSERT_LINKS = {name: ins(_LINKS).on_conflict_do_nothing(index_elements=["account_id", "msgid_sha256"])
                 for name, ins in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}
_INSERT_LINKS_RETURNING = _INSERT_LINKS["postgresql"].returning(_LINKS.c.msgid_sha256)


@dataclass
class ThreadRequest:
    """One message's ask for a thread: its msg-ids and the message rows (dicts about to be
    inserted) whose ``thread_id`` is to be filled in.

    ``thread_key``: the parser's root id (References[0], else In-Reply-To, else Message-ID) naming
    a brand-new thread; ``fallback``: what names it when the message carries no id at all."""

    account_id: str
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    thread_key: str | None
    fallback: str
    rows: list[dict] = field(default_factory=list)


def assign_threads(s: Session, requests: list[ThreadRequest]) -> None:
    """Link the msg-ids of new messages inside the caller's transaction and set each request's
    rows' ``thread_id``; requests are taken in order, so a later one joins the thread of an
    earlier one it refers to. One SELECT and one INSERT per account for the whole list, whatever
    its length (a group-commit batch: store.writer.defer_prepare), plus, on PostgreSQL when a
    concurrent writer linked one of the ids first, one SELECT of those."""
    by_account: dict[str, list[ThreadRequest]] = {}
    for r in requests:
        by_account.setdefault(r.account_id, []).append(r)
    for account_id, reqs in by_account.items():
        _assign_account(s, account_id, reqs)


def _assign_account(s: Session, account_id: str, requests: list[ThreadRequest]) -> None:
    conn = s.connection()
    wanted = [(r, sorted({_sha(i) for i in message_ids_of(r.message_id, r.in_reply_to, r.references)}))
              for r in requests]
    all_shas = sorted({h for _, shas in wanted for h in shas})
    links, born = _links_of(conn, account_id, all_shas)  # sha → thread; thread → oldest link time
    new_links: dict[str, str] = {}  # sha → thread, links this call adds
    maps = [links, new_links]  # what a merge re-points in memory
    chosen: dict[int, str] = {}  # id(request) → its thread
    now = utcnow()

    def merge(threads: set[str]) -> str:
        winner = min(threads, key=lambda t: (born[t], t))
        losers = threads - {winner}
        if losers:
            _merge_at_rest(conn, account_id, winner, losers)
            for table in maps:
                for h, t in table.items():
                    if t in losers:
                        table[h] = winner
            for r, _ in wanted:
                if chosen.get(id(r)) in losers:
                    chosen[id(r)] = winner
        return winner

    for r, shas in wanted:
        if not shas:
            chosen[id(r)] = thread_id_for(account_id, r.thread_key, r.fallback)
            continue
        found = {links[h] for h in shas if h in links}
        if found:
            thread = merge(found)
        else:
            thread = thread_id_for(account_id, r.thread_key, r.fallback)
            born.setdefault(thread, now)
        for h in shas:
            if h not in links:
                links[h] = new_links[h] = thread
        chosen[id(r)] = thread
    if new_links:
        rows = [{"account_id": account_id, "msgid_sha256": h, "thread_id": t, "created_at": now}
                for h, t in new_links.items()]
        if conn.dialect.name == "sqlite":
            # SQLite has one writer at a time: nobody can have linked our ids meanwhile.
            conn.execute(_INSERT_LINKS["sqlite"], rows)
        else:
            # A concurrent writer may have linked some of our ids meanwhile (our insert then did
            # nothing for them; RETURNING names the rows it did insert): join up with its threads.
            inserted = set(conn.execute(_INSERT_LINKS_RETURNING, rows).scalars())
            taken = sorted(set(new_links) - inserted)
            if taken:
                again, born_again = _links_of(conn, account_id, taken)
                maps.append(again)
                for t, created in born_again.items():
                    born[t] = min(born.get(t, created), created)
                for r, shas in wanted:
                    current = chosen[id(r)]
                    threads = {again.get(h, current) for h in shas} | {current}
                    if len(threads) > 1:
                        merge(threads)
    for r, _ in wanted:
        for row in r.rows:
            row["thread_id"] = chosen[id(r)]


def _links_of(conn: Connection, account_id: str, shas: list[str]) -> tuple[dict[str, str], dict[str, object]]:
    """The links at rest of the given ids: ``(sha → thread, thread → its oldest link time)``."""
    links: dict[str, str] = {}
    born: dict[str, object] = {}
    for i in range(0, len(shas), _IN_CHUNK):
        params = {"account_id": account_id, "shas": shas[i:i + _IN_CHUNK]}
        for sha, thread, created in conn.execute(_THREADS_OF[conn.dialect.name], params):
            links[sha] = thread
            if thread not in born or created < born[thread]:
                born[thread] = created
    return links, born


def _merge_at_rest(conn: Connection, account_id: str, winner: str, losers: set[str]) -> None:
    """Re-point the stored links and message rows of ``losers`` to ``winner`` (the caller re-points
    what it holds in memory)."""
    params = {"b_account": account_id, "b_losers": sorted(losers), "b_winner": winner}
    conn.execute(_RELINK, params)
    conn.execute(_REPOINT_MESSAGES, params)
