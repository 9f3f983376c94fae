"""Store queries for the IMAP window: mailbox views by scope, flags with RFC 7162 mod-sequences.

A *scope* is what an app-password grants: one address (``bob@example.com``, matched
case-insensitively) or a whole domain. A mailbox view holds the messages of that scope with
``mailbox`` = ``INBOX`` or ``Sent`` that were accepted and stored (never zero-retention, never
deferred) and have an IMAP UID. UIDs are allocated per domain in the committing transaction
(:mod:`store.messages`), so every view sees an ascending subset and a query for ``uid > last`` never
misses a message that commits later. Mod-sequences come from the same domain row, so the same holds
for ``modseq > last``.

All functions block (run them in a worker thread from an event loop). Errors: SQLAlchemy's, as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import and_, func, select, update
from sqlalchemy.sql import ColumnElement

from store.db import Database
from store.models import Domain, Message, MessageStatus, Retention

MAILBOXES = ("INBOX", "Sent")
SEEN, FLAGGED, ANSWERED = 1, 2, 4
_IN_CHUNK = 900


@dataclass(frozen=True)
class Scope:
    """What one app-password may read: ``address`` None means every inbox of the domain."""

    account_id: str
    domain_id: str
    address: str | None


@dataclass(frozen=True)
class ViewRow:
    """One message of a view as the IMAP index keeps it: UID, flag bits, mod-sequence (also what
    :func:`store_flags` reports for each message whose flags it changed)."""

    uid: int
    flags: int
    modseq: int


@dataclass(frozen=True)
class ViewDelta:
    """Rows with ``uid > after_uid`` or ``modseq > after_modseq`` (ordered by UID), and the mailbox's
    UIDVALIDITY (RFC 3501 §2.3.1.1)."""

    uidvalidity: int
    rows: list[ViewRow]


@dataclass(frozen=True)
class MessageMeta:
    """What FETCH and SEARCH read from a message row (no content)."""

    uid: int
    flags: int
    modseq: int
    received_at: datetime
    size: int
    raw_key: str | None
    transaction_id: str
    date: datetime | None


@dataclass(frozen=True)
class StoreOutcome:
    """Result of :func:`store_flags`: the changed messages and the UIDs refused by UNCHANGEDSINCE
    (RFC 7162 §3.1.3: reported as ``[MODIFIED uid-set]``)."""

    changed: list[ViewRow]
    modified: list[int]


def flag_bits(seen: bool, flagged: bool, answered: bool) -> int:
    """Pack the persisted flags into bits (:data:`SEEN`, :data:`FLAGGED`, :data:`ANSWERED`)."""
    return (SEEN if seen else 0) | (FLAGGED if flagged else 0) | (ANSWERED if answered else 0)


def _view(scope: Scope, mailbox: str) -> ColumnElement[bool]:
    clauses = [Message.account_id == scope.account_id, Message.domain_id == scope.domain_id,
               Message.mailbox == mailbox, Message.status == MessageStatus.ACCEPTED.value,
               Message.retention == Retention.STORED.value, Message.imap_uid.is_not(None)]
    if scope.address is not None:
        clauses.append(func.lower(Message.inbox) == scope.address.lower())
    return and_(*clauses)


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(values), _IN_CHUNK):
        yield values[i:i + _IN_CHUNK]


def uidvalidity(db: Database, scope: Scope) -> int:
    """The UIDVALIDITY of the scope's mailboxes (the domain's; it never changes)."""
    with db.read() as s:
        return int(s.scalar(select(Domain.imap_uidvalidity).where(Domain.id == scope.domain_id)))


def load_view(db: Database, scope: Scope, mailbox: str, *, after_uid: int = 0, after_modseq: int | None = None
              ) -> ViewDelta:
    """New messages (UID above ``after_uid``) and, with ``after_modseq``, messages changed since it."""
    cond = Message.imap_uid > after_uid
    if after_modseq is not None:
        cond = cond | (Message.modseq > after_modseq)
    with db.read() as s:
        validity = s.scalar(select(Domain.imap_uidvalidity).where(Domain.id == scope.domain_id))
        rows = s.execute(select(Message.imap_uid, Message.seen, Message.flagged, Message.answered, Message.modseq)
                         .where(_view(scope, mailbox)).where(cond).order_by(Message.imap_uid)).all()
    return ViewDelta(int(validity or 0), [ViewRow(int(u), flag_bits(a, b, c), int(m)) for u, a, b, c, m in rows])


def message_meta(db: Database, scope: Scope, mailbox: str, uids: Sequence[int] | None = None) -> list[MessageMeta]:
    """Metadata of the given UIDs of a view (all of them when ``uids`` is None), ordered by UID."""
    cols = (Message.imap_uid, Message.seen, Message.flagged, Message.answered, Message.modseq, Message.received_at,
            Message.size, Message.raw_key, Message.transaction_id, Message.date)
    out: list[MessageMeta] = []
    wanted = None if uids is None else set(uids)
    with db.read() as s:
        base = select(*cols).where(_view(scope, mailbox))
        if uids is None:
            batches = [base.order_by(Message.imap_uid)]
        else:
            # A UID range per chunk, not a long IN list: the (domain_id, imap_uid) index serves it
            # whatever the planner's statistics say (a bulk load leaves them stale on PostgreSQL,
            # and an IN list then went to a 10,000-row bitmap scan per batch).
            batches = [base.where(Message.imap_uid.between(min(c), max(c))).order_by(Message.imap_uid)
                       for c in _chunks(sorted(uids))]
        for stmt in batches:
            for u, se, fl, an, ms, rec, size, raw_key, txn, date in s.execute(stmt):
                if wanted is None or u in wanted:
                    out.append(MessageMeta(int(u), flag_bits(se, fl, an), int(ms), rec, int(size), raw_key, txn,
                                           date))
    return out


def store_flags(db: Database, scope: Scope, mailbox: str, uids: Sequence[int], *, mode: str, flags: int,
                unchanged_since: int | None = None) -> StoreOutcome:
    """Set (``mode="replace"``), add (``"add"``) or remove (``"remove"``) persisted flag bits on the
    given UIDs in one transaction, giving the changed messages one new mod-sequence (RFC 7162 §3.2).

    Messages whose mod-sequence is above ``unchanged_since`` are left alone and listed in
    ``modified``. Messages whose flags would not change keep their mod-sequence."""
    if mode not in ("replace", "add", "remove"):
        raise ValueError(f"bad STORE mode {mode!r}")
    changed: list[tuple[str, int, int]] = []  # (row id, uid, new bits)
    modified: list[int] = []
    with db.session() as s:
        for chunk in _chunks(sorted(uids)):
            rows = s.execute(select(Message.id, Message.imap_uid, Message.seen, Message.flagged, Message.answered,
                                    Message.modseq).where(_view(scope, mailbox))
                             .where(Message.imap_uid.in_(list(chunk))).order_by(Message.imap_uid)
                             .with_for_update()).all()
            for row_id, uid, se, fl, an, ms in rows:
                old = flag_bits(se, fl, an)
                new = flags if mode == "replace" else (old | flags if mode == "add" else old & ~flags)
                if unchanged_since is not None and ms > unchanged_since:
                    modified.append(int(uid))
                    continue
                if new != old:
                    changed.append((row_id, int(uid), new))
        if not changed:
            return StoreOutcome([], modified)
        modseq = int(s.execute(update(Domain).where(Domain.id == scope.domain_id)
                               .values(imap_highest_modseq=Domain.imap_highest_modseq + 1)
                               .returning(Domain.imap_highest_modseq)).scalar_one())
        by_bits: dict[int, list[str]] = {}
        for row_id, _, bits in changed:
            by_bits.setdefault(bits, []).append(row_id)
        for bits, ids in by_bits.items():
            for i in range(0, len(ids), _IN_CHUNK):
                s.execute(update(Message).where(Message.id.in_(ids[i:i + _IN_CHUNK]))
                          .values(seen=bool(bits & SEEN), flagged=bool(bits & FLAGGED),
                                  answered=bool(bits & ANSWERED), modseq=modseq))
    return StoreOutcome([ViewRow(uid, bits, modseq) for _, uid, bits in changed], modified)


def domain_name(db: Database, domain_id: str) -> str | None:
    """The name of a domain (the notification channel key)."""
    with db.read() as s:
        return s.scalar(select(Domain.name).where(Domain.id == domain_id))
