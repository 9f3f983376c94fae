"""The metadata database schema (SQLAlchemy 2 declarative models).

The raw message bytes are the source of truth and live in the blob store; these rows are the index
over them plus the delivery state machine. Schema changes go through Alembic migrations in
``store/migrations/versions`` (``mailkite db upgrade``).
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    LargeBinary,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class JSONType(TypeDecorator):
    """JSON values: ``JSONB`` on PostgreSQL (as migration 0001 creates the columns), SQLAlchemy's
    generic JSON elsewhere. The PostgreSQL dialect module is imported only when PostgreSQL is in
    use: ~2 MB that SQLite processes (the long-lived IMAP one above all) do not carry."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB  # noqa: PLC0415

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


class Base(DeclarativeBase):
    pass


class Retention(str, enum.Enum):
    """Whether a message's content is kept at rest (DESIGN.md "Invariants")."""

    STORED = "stored"
    ZERO_RETENTION = "zero_retention"


class MessageStatus(str, enum.Enum):
    """``accepted``: 250 was given. ``deferred``: a zero-retention message answered 451."""

    ACCEPTED = "accepted"
    DEFERRED = "deferred"


class EventState(str, enum.Enum):
    """Delivery state of one webhook event (one message × one endpoint)."""

    PENDING = "pending"          # in the outbox, waiting for its due time or for Redis
    QUEUED = "queued"            # handed to the rq queue
    DELIVERING = "delivering"    # claimed by a worker; lease_until bounds the claim
    DELIVERED = "delivered"      # a 2xx came back
    FAILED = "failed"            # the retry schedule ran out, or the endpoint is disabled


class AttemptOutcome(str, enum.Enum):
    """What one HTTP attempt led to."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    ENDPOINT_DISABLED = "endpoint_disabled"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Domain(Base):
    """A receiving domain. ``policy`` holds per-domain switches (see ``store.domains.DomainPolicy``)."""

    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    zero_retention: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # IMAP: UIDs are allocated per domain inside the committing transaction (RFC 3501 §2.3.1.1), so
    # they ascend in commit order; an address-scoped view sees an ascending subset.
    imap_uidvalidity: Mapped[int] = mapped_column(BigInteger)
    imap_next_uid: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # RFC 7162 CONDSTORE: bumped in the committing transaction of every new message and flag change.
    imap_highest_modseq: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[str | None] = mapped_column(ForeignKey("domains.id"), nullable=True, index=True)
    url: Mapped[str] = mapped_column(Text)
    # The whsec_ secret(s), encrypted at rest (store.crypto.SecretBox); several, newest first,
    # while a rotation is in progress.
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


_ZERO_RETENTION_ROWS = text("retention = 'zero_retention'")  # a partial index's WHERE


class Message(Base):
    """One accepted message for one recipient (inbox). Recipients of one SMTP transaction share
    ``transaction_id`` and the blobs ``raw_key`` / ``parsed_key``."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("domain_id", "imap_uid", name="uq_messages_domain_uid"),
        Index("ix_messages_account_received", "account_id", "received_at"),
        # A sending server's retry of a zero-retention message finds the earlier attempt by the
        # hash of the bytes as received (inbound.zero_retention); only those rows are indexed.
        Index("ix_messages_zero_retention_sha256", "sha256",
              postgresql_where=_ZERO_RETENTION_ROWS, sqlite_where=_ZERO_RETENTION_ROWS),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(40), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id"), index=True)
    inbox: Mapped[str] = mapped_column(Text, index=True)
    mailbox: Mapped[str] = mapped_column(String(64), default="INBOX")
    imap_uid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.ACCEPTED.value)
    retention: Mapped[str] = mapped_column(String(16), default=Retention.STORED.value)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # SMTP envelope (RFC 5321): MAIL FROM, RCPT TO, client, HELO, TLS. Text, not varchar(n): what
    # the sending side chose has no length limit here (RFC 5321 §4.5.3.1; migration 0007).
    mail_from: Mapped[str] = mapped_column(Text)
    rcpt_to: Mapped[list[str]] = mapped_column(JSONType, default=list)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    helo: Mapped[str | None] = mapped_column(Text, nullable=True)
    tls: Mapped[bool] = mapped_column(Boolean, default=False)
    # Headers of interest (none kept for zero-retention domains).
    message_id_header: Mapped[str | None] = mapped_column(String(998), nullable=True, index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998), nullable=True)
    references: Mapped[list[str]] = mapped_column(JSONType, default=list)
    thread_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # SHA-256 (hex) of the raw blob; zero-retention rows have no blob and keep the hash of the message
    # as received instead, which a sending server's retry of it repeats (inbound.zero_retention).
    sha256: Mapped[str] = mapped_column(String(64))
    raw_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    parsed_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    parse_errors: Mapped[list[str]] = mapped_column(JSONType, default=list)
    auth: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    spam: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    virus: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # IMAP system flags that persist (DESIGN.md "IMAP window").
    seen: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    # RFC 7162 mod-sequence of the last change (arrival or flag change), from domains.imap_highest_modseq.
    modseq: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")


class Event(Base):
    """One ``message.received`` event for one endpoint; ``id`` is the ``webhook-id`` header."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_state_lease", "state", "lease_until"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    type: Mapped[str] = mapped_column(String(64), default="message.received")
    state: Mapped[str] = mapped_column(String(16), default=EventState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the rq job carrying it, while queued
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class OutboxEntry(Base):
    """Transactional outbox: an event to hand to the queue once ``due_at`` has passed.

    Written in the same transaction as the message (first attempt) or by the worker (retries);
    the relay moves due rows into rq and deletes them. Ids are never reused (SQLite: AUTOINCREMENT;
    PostgreSQL: a sequence), so a relay deleting the rows it read cannot hit a newer row.
    """

    __tablename__ = "outbox"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryAttempt(Base):
    """One HTTP attempt: when, how long, what came back. Never the body."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[str] = mapped_column(String(24))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AppPassword(Base):
    """An IMAP app-password (DESIGN.md "App-passwords"): only its hash is stored, with a short public
    ``prefix`` for lookup and display. ``address`` is set for an address scope, None for a whole domain."""

    __tablename__ = "app_passwords"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    label: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(320))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id"))
    address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ThreadLink(Base):
    """Message-ID → thread, per account (store.threads): every msg-id a message carries (its own,
    In-Reply-To, References) points at the thread it joined, so a reply and its original meet
    whichever arrives first. Keyed by the SHA-256 of the msg-id (ids can be long and hostile)."""

    __tablename__ = "thread_links"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    msgid_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageStructure(Base):
    """IMAP structures of one stored SMTP transaction (RFC 3501 §7.4.2, §6.4.5), computed at ingest.

    One row per transaction: its recipients' message rows share the raw blob, so they share these
    bytes too. ``envelope``/``bodystructure``/``body`` are wire forms; ``header_block`` is the
    top-level header as stored (``BODY[HEADER]``); ``parts`` maps part numbers to
    ``[header_start, body_start, end]`` offsets into the raw blob (JSON text, decoded only when a part
    is fetched); ``size`` is RFC822.SIZE.
    None for zero-retention mail (DESIGN.md "Invariants").
    """

    __tablename__ = "imap_structures"

    transaction_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    bodystructure: Mapped[bytes] = mapped_column(LargeBinary)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    header_block: Mapped[bytes] = mapped_column(LargeBinary)
    parts: Mapped[str] = mapped_column(Text)  # JSON {"1.2": [header_start, body_start, end], …}
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
