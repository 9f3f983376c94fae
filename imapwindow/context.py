"""What every session of one IMAP process shares: the store, views, authenticator, limits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from imapwindow.auth import Authenticator
from imapwindow.mailbox import ViewRegistry
from imapwindow.notify import Publisher
from imapwindow.structures import StructureSource
from store.blobs import BlobStore
from store.db import Database


LARGE_RESPONSE = 4 * 1024 * 1024


@dataclass(frozen=True)
class ImapLimits:
    """Every bound of the IMAP window. Units: bytes, seconds, counts.

    Defaults follow Dovecot's and the reference products' (Nylas: 20 connections per account,
    IDLE 30 minutes; RFC 3501 §5.4: autologout no sooner than 30 minutes)."""

    max_line: int = 64 * 1024
    max_literal_preauth: int = 8 * 1024
    max_literal: int = 64 * 1024
    max_command: int = 256 * 1024
    max_pipelined: int = 64           # commands read ahead; then TCP flow control
    max_connections_per_account: int = 20
    max_connections: int = 5000
    idle_timeout_s: float = 30 * 60
    autologout_s: float = 30 * 60
    preauth_timeout_s: float = 60
    handshake_timeout_s: float = 30
    auth_max_failures: int = 10
    auth_window_s: float = 300
    auth_failure_delay_s: float = 1.0
    fetch_batch: int = 100
    safety_refresh_s: float = 60


@dataclass
class ServerContext:
    """Shared by the sessions of one process."""

    db: Database
    blobs: BlobStore
    structures: StructureSource
    registry: ViewRegistry
    authenticator: Authenticator
    limits: ImapLimits
    hostname: str
    publisher: Publisher | None = None
    # Called (in a worker thread) after a response of more than LARGE_RESPONSE bytes, e.g. glibc's
    # malloc_trim: the memory a big FETCH used goes back to the system.
    release_memory: Callable[[], object] | None = None
    account_connections: Counter = field(default_factory=Counter)
    sessions: set = field(default_factory=set)
