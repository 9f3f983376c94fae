"""Messages: the ingest transaction (message rows, events, outbox, IMAP UIDs in one commit) and reads.

One SMTP transaction becomes one message row per accepted recipient (its inbox); the rows share the
raw and parsed blobs. Every enabled endpoint that takes mail for the recipient's domain gets one
event and one outbox row, in the same transaction, so a committed message is always delivered
(DESIGN.md "Invariants").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from store.db import Database
from store.domains import DomainInfo
from store.errors import NotFound
from store.ids import new_id
from store.imap_structures import add_structure, structure_row
from store.models import Domain, Event, EventState, Message, MessageStatus, OutboxEntry, Retention, WebhookEndpoint
from store.threads import ThreadRequest, assign_threads, thread_id_for
from store.writer import defer_insert, defer_prepare

__all__ = ["MessageRecord", "NewTransaction", "Recipient", "StoredMessage", "get_message", "record_transaction",
           "record_transaction_in", "thread_id_for"]


@dataclass(frozen=True)
class Recipient:
    """One accepted recipient: its inbox address, its domain, and the RCPT TO list shown to it."""

    inbox: str
    domain: DomainInfo
    rcpt_to: tuple[str, ...]


@dataclass
class NewTransaction:
    """What the pipeline hands the store for one accepted SMTP transaction."""

    transaction_id: str
    recipients: list[Recipient]
    mail_from: str
    client_ip: str | None
    helo: str | None
    tls: bool
    received_at: datetime
    size: int
    sha256: str
    raw_key: str | None
    parsed_key: str | None
    retention: Retention = Retention.STORED
    status: MessageStatus = MessageStatus.ACCEPTED
    message_id_header: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    thread_key: str | None = None
    subject: str | None = None
    from_address: str | None = None
    from_name: str | None = None
    date: datetime | None = None
    parse_errors: list[str] = field(default_factory=list)
    auth: dict[str, Any] = field(default_factory=dict)
    spam: dict[str, Any] = field(default_factory=dict)
    virus: dict[str, Any] = field(default_factory=dict)
    create_events: bool = True
    message_ids: list[str] | None = None  # chosen by the caller (one per recipient), else generated
    # parser.imap_structure.ImapStructure of the stored raw (duck-typed: store.imap_structures);
    # stored only for retained, accepted mail.
    imap_structure: Any = None


@dataclass(frozen=True)
class StoredMessage:
    """A committed message row and the events created for it."""

    id: str
    inbox: str
    domain: str
    event_ids: tuple[str, ...]
    endpoint_ids: tuple[str, ...]


@dataclass(frozen=True)
class MessageRecord:
    """A message row as plain data, with its domain name (what payloads and readers need)."""

    id: str
    transaction_id: str
    account_id: str
    domain: str
    inbox: str
    mailbox: str
    imap_uid: int | None
    status: str
    retention: str
    received_at: datetime
    mail_from: str
    rcpt_to: list[str]
    client_ip: str | None
    helo: str | None
    tls: bool
    message_id_header: str | None
    in_reply_to: str | None
    references: list[str]
    thread_id: str | None
    subject: str | None
    from_address: str | None
    from_name: str | None
    date: datetime | None
    size: int
    sha256: str
    raw_key: str | None
    parsed_key: str | None
    parse_errors: list[str]
    auth: dict[str, Any]
    spam: dict[str, Any]
    virus: dict[str, Any]

    @classmethod
    def from_mapping(cls, m, domain_name: str) -> "MessageRecord":
        """From a Core row mapping holding the ``messages`` columns by name."""
        return cls(m["id"], m["transaction_id"], m["account_id"], domain_name, m["inbox"], m["mailbox"],
                   m["imap_uid"], m["status"], m["retention"], m["received_at"], m["mail_from"],
                   list(m["rcpt_to"] or []), m["client_ip"], m["helo"], m["tls"], m["message_id_header"],
                   m["in_reply_to"], list(m["references"] or []), m["thread_id"], m["subject"], m["from_address"],
                   m["from_name"], m["date"], m["size"], m["sha256"], m["raw_key"], m["parsed_key"],
                   list(m["parse_errors"] or []), dict(m["auth"] or {}), dict(m["spam"] or {}),
                   dict(m["virus"] or {}))

    @classmethod
    def from_row(cls, m: Message, domain_name: str) -> "MessageRecord":
        """From an ORM ``Message``."""
        return cls.from_mapping({c.name: getattr(m, c.key) for c in Message.__table__.columns}, domain_name)


_MESSAGES = Message.__table__
_EVENTS = Event.__table__
_DOMAINS = Domain.__table__
_ENDPOINTS = WebhookEndpoint.__table__
# Prebuilt Core statements: the ingest transaction runs for every message, and building ORM
# statements per call cost several times the SQL itself (bench/ingest.py).
_ALLOCATE_UIDS = (update(_DOMAINS).where(_DOMAINS.c.id == bindparam("domain_id"))
                  .values(imap_next_uid=_DOMAINS.c.imap_next_uid + bindparam("count"),
                          imap_highest_modseq=_DOMAINS.c.imap_highest_modseq + 1)
                  .returning(_DOMAINS.c.imap_next_uid, _DOMAINS.c.imap_highest_modseq))
_ENDPOINT_IDS = (select(_ENDPOINTS.c.id)
                 .where(_ENDPOINTS.c.account_id == bindparam("account_id"), _ENDPOINTS.c.enabled.is_(True),
                        or_(_ENDPOINTS.c.domain_id.is_(None), _ENDPOINTS.c.domain_id == bindparam("domain_id")))
                 .order_by(_ENDPOINTS.c.created_at))
# .inline(): no RETURNING of generated keys (store.writer.defer_insert reads no result).
_INSERT_MESSAGES = insert(_MESSAGES).inline()
_INSERT_EVENTS = insert(_EVENTS).inline()
_INSERT_OUTBOX = insert(OutboxEntry.__table__).inline()
_ENDPOINTS_SEEN = "mailkite.endpoint_ids"  # Session.info key: domain id → endpoint ids, per transaction
# Message columns whose values come from the sender (header fields, decoded encoded-words, DKIM
# tags): they may hold NUL characters, which PostgreSQL's text and jsonb refuse.
_FROM_OUTSIDE = ("subject", "from_name", "from_address", "message_id_header", "in_reply_to", "references",
                 "parse_errors", "auth", "spam", "virus", "rcpt_to", "inbox", "mail_from", "helo")


def without_nul(value: Any) -> Any:
    """``value`` with each NUL character of its strings (in lists and dicts too, keys included)
    replaced by U+FFFD. PostgreSQL's ``text`` and ``jsonb`` cannot hold NUL, so a ``Subject:
    =?utf-8?q?a=00b?=`` failed the insert and got 451 on every retry; SQLite could hold it, and
    both databases now hold the same. Returns ``value`` itself when there is no NUL."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value


def _allocate_uids(s: Session, wanted: list[list[tuple[str, dict]]]) -> None:
    """Give the message rows of a batch their IMAP UIDs and mod-sequence: ``wanted`` holds, per
    SMTP transaction in commit order, its ``(domain id, message row)`` pairs. One UPDATE per
    domain reserves the batch's UIDs and one mod-sequence (the messages of one commit share it,
    RFC 7162 §3.1).

    The row update takes the domain row's write lock (PostgreSQL) or the database lock (SQLite)
    until the commit, so UIDs are handed out in commit order (RFC 3501 §2.3.1.1: strictly
    ascending), and so are the mod-sequences; domains are locked in id order (no deadlock
    between two MX processes).
    """
    by_domain: dict[str, list[dict]] = {}
    for pairs in wanted:
        for domain_id, row in pairs:
            by_domain.setdefault(domain_id, []).append(row)
    conn = s.connection()
    for domain_id in sorted(by_domain):
        rows = by_domain[domain_id]
        next_uid, modseq = conn.execute(_ALLOCATE_UIDS, {"domain_id": domain_id, "count": len(rows)}).one()
        for uid, row in enumerate(rows, start=int(next_uid) - len(rows)):
            row["imap_uid"] = uid
            row["modseq"] = int(modseq)


def record_transaction(db: Database, tx: NewTransaction) -> list[StoredMessage]:
    """Write the message rows, their events and outbox rows in one transaction; returns what was stored."""
    with db.session() as s:
        return record_transaction_in(s, tx)


def record_transaction_in(s: Session, tx: NewTransaction) -> list[StoredMessage]:
    """:func:`record_transaction` inside the caller's session (same commit as the caller's own rows)."""
    conn = s.connection()
    stored: list[StoredMessage] = []
    with_uid = tx.status == MessageStatus.ACCEPTED and tx.retention == Retention.STORED
    threads: dict[str, ThreadRequest] = {}  # account → the thread request of this message (one per account)
    # domain → endpoint ids taking its mail; kept for the whole transaction (a group-commit batch)
    endpoints: dict[str, tuple[str, ...]] = s.info.setdefault(_ENDPOINTS_SEEN, {})
    keep_content = tx.retention == Retention.STORED
    message_rows: list[dict] = []
    for i, r in enumerate(tx.recipients):
        msg_id = tx.message_ids[i] if tx.message_ids else new_id("msg")
        row = dict(
            id=msg_id, transaction_id=tx.transaction_id, account_id=r.domain.account_id, domain_id=r.domain.id,
            inbox=r.inbox, mailbox="INBOX", imap_uid=None, status=tx.status.value, retention=tx.retention.value,
            received_at=tx.received_at, mail_from=tx.mail_from, rcpt_to=list(r.rcpt_to), client_ip=tx.client_ip,
            helo=tx.helo, tls=tx.tls,
            message_id_header=tx.message_id_header if keep_content else None,
            in_reply_to=tx.in_reply_to if keep_content else None,
            references=list(tx.references) if keep_content else [],
            thread_id=None,  # set by store.threads.assign_threads
            subject=tx.subject if keep_content else None,
            from_address=tx.from_address if keep_content else None,
            from_name=tx.from_name if keep_content else None,
            date=tx.date if keep_content else None,
            size=tx.size, sha256=tx.sha256, raw_key=tx.raw_key, parsed_key=tx.parsed_key,
            parse_errors=list(tx.parse_errors), auth=tx.auth, spam=tx.spam, virus=tx.virus,
            seen=False, flagged=False, answered=False, modseq=1,  # UID and modseq: _allocate_uids
        )
        for key in _FROM_OUTSIDE:
            row[key] = without_nul(row[key])
        message_rows.append(row)
        if keep_content:
            if r.domain.account_id not in threads:
                threads[r.domain.account_id] = ThreadRequest(
                    r.domain.account_id, message_id=tx.message_id_header, in_reply_to=tx.in_reply_to,
                    references=tx.references, thread_key=tx.thread_key, fallback=msg_id)
            threads[r.domain.account_id].rows.append(row)
        endpoint_ids: tuple[str, ...] = ()
        if tx.create_events:
            if r.domain.id not in endpoints:
                endpoints[r.domain.id] = tuple(conn.execute(_ENDPOINT_IDS, {
                    "account_id": r.domain.account_id, "domain_id": r.domain.id}).scalars())
            endpoint_ids = endpoints[r.domain.id]
        stored.append(StoredMessage(msg_id, r.inbox, r.domain.name, tuple(new_id("evt") for _ in endpoint_ids),
                                    endpoint_ids))
    # UIDs and threads, then Core bulk inserts, parents before children; in a group-commit batch
    # each runs once for the whole batch, just before its commit (store.writer.defer_prepare).
    if with_uid:
        defer_prepare(s, _allocate_uids, [(r.domain.id, row) for r, row in zip(tx.recipients, message_rows)])
    for request in threads.values():
        defer_prepare(s, assign_threads, request)
    defer_insert(s, _INSERT_MESSAGES, message_rows)
    event_rows = [dict(id=evt_id, account_id=r.domain.account_id, message_id=m.id, endpoint_id=ep_id,
                       type="message.received", state=EventState.PENDING.value, attempts=0, created_at=tx.received_at)
                  for m, r in zip(stored, tx.recipients) for evt_id, ep_id in zip(m.event_ids, m.endpoint_ids)]
    if event_rows:
        defer_insert(s, _INSERT_EVENTS, event_rows)
        defer_insert(s, _INSERT_OUTBOX, [dict(event_id=e["id"], due_at=tx.received_at, created_at=tx.received_at)
                                         for e in event_rows])
    if with_uid and tx.imap_structure is not None:
        add_structure(s, structure_row(tx.transaction_id, tx.imap_structure))
    return stored


def get_message(db: Database, message_id: str) -> MessageRecord:
    """One message by id; raises :class:`NotFound`."""
    with db.read() as s:
        row = s.execute(select(Message, Domain.name).join(Domain, Message.domain_id == Domain.id)
                        .where(Message.id == message_id)).first()
        if row is None:
            raise NotFound(f"no message {message_id}")
        return MessageRecord.from_row(row[0], row[1])
