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

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Message, ThreadLink, utcnow
from store.writer import flush_deferred

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
_THREADS_OF = (select(_LINKS.c.thread_id, _LINKS.c.created_at)
               .where(_LINKS.c.account_id == bindparam("account_id"),
                      _LINKS.c.msgid_sha256.in_(bindparam("shas", expanding=True))))
_RELINK = (update(_LINKS).where(_LINKS.c.account_id == bindparam("b_account"),
                                _LINKS.c.thread_id.in_(bindparam("b_losers", expanding=True)))
           .values(thread_id=bindparam("b_winner")))
_REPOINT_MESSAGES = (update(_MESSAGES).where(_MESSAGES.c.account_id == bindparam("b_account"),
                                             _MESSAGES.c.thread_id.in_(bindparam("b_losers", expanding=True)))
                     .values(thread_id=bindparam("b_winner")))
_INSERT_LINKS = {name: ins(_LINKS).on_conflict_do_nothing(index_elements=["account_id", "msgid_sha256"])
                 for name, ins in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


def assign_thread(s: Session, account_id: str, *, message_id: str | None, in_reply_to: str | None,
                  references: list[str], thread_key: str | None, fallback: str) -> str:
    """Link a new message's ids inside the caller's transaction; returns its ``thr_`` thread id.

    ``thread_key``: the parser's root id (References[0], else In-Reply-To, else Message-ID) naming a
    brand-new thread; ``fallback``: what names it when the message carries no id at all."""
    ids = message_ids_of(message_id, in_reply_to, references)
    if not ids:
        return thread_id_for(account_id, thread_key, fallback)
    conn = s.connection()
    shas = sorted({_sha(i) for i in ids})
    found = _threads_of(conn, account_id, shas)
    thread = _merge(s, account_id, found) if found else thread_id_for(account_id, thread_key, fallback)
    now = utcnow()
    conn.execute(_INSERT_LINKS[conn.dialect.name],
                 [{"account_id": account_id, "msgid_sha256": h, "thread_id": thread, "created_at": now} for h in shas])
    if conn.dialect.name == "sqlite":
        return thread  # SQLite has one writer at a time: nobody can have linked our ids meanwhile
    # A concurrent writer may have linked one of our ids to another thread meanwhile: join up.
    again = _threads_of(conn, account_id, shas)
    return _merge(s, account_id, again) if len(again) > 1 else thread


def _threads_of(conn: Connection, account_id: str, shas: list[str]) -> dict[str, object]:
    """thread id → its oldest link time, for the threads the given ids are linked to."""
    out: dict[str, object] = {}
    for thread, created in conn.execute(_THREADS_OF, {"account_id": account_id, "shas": shas}):
        if thread not in out or created < out[thread]:
            out[thread] = created
    return out


def _merge(session: Session, account_id: str, threads: dict[str, object]) -> str:
    """Make the given threads one: the oldest survives (ties: the smallest id); returns it."""
    winner = min(threads, key=lambda t: (threads[t], t))
    losers = [t for t in threads if t != winner]
    if losers:
        # Message rows of this batch still waiting to be inserted must be re-pointed too.
        flush_deferred(session)
        conn = session.connection()
        params = {"b_account": account_id, "b_losers": losers, "b_winner": winner}
        conn.execute(_RELINK, params)
        conn.execute(_REPOINT_MESSAGES, params)
    return winner
