"""IMAP app-passwords (DESIGN.md "App-passwords"): create, list, revoke, check.

A password is ``mk_imap_`` + 40 random base62 characters (≈ 238 bits). Only an Argon2id hash is kept
(argon2-cffi, RFC 9106), with the first :data:`PREFIX_CHARS` random characters as a public prefix
for lookup and display. The scope is one address (``bob@example.com``) or a whole domain
(``example.com``); the domain must exist.

Results are typed: :class:`Credential` (what a valid password grants) and :class:`CheckOutcome`
(why a password is refused). Errors: :class:`store.errors.InvalidInput`, :class:`store.errors.NotFound`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
import string
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update

from store.accounts import ensure_default_account
from store.db import Database
from store.domains import normalize_domain
from store.errors import InvalidInput, NotFound
from store.ids import new_id
from store.models import AppPassword, Domain, utcnow

PASSWORD_PREFIX = "mk_imap_"
RANDOM_CHARS = 40
PREFIX_CHARS = 8
LAST_USED_GRANULARITY = timedelta(minutes=1)
_BASE62 = string.ascii_letters + string.digits

# Argon2id with the RFC 9106 / OWASP "second recommended" memory-light parameters: the passwords are
# long random strings, so the hash only needs to make a stolen table useless, not to slow down
# guessing a human secret; 19 MiB and 2 passes cost ~20 ms per check.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = _HASHER.hash("mk_imap_dummy-password-for-constant-time-refusals")


class CheckOutcome(str, enum.Enum):
    """The verdict on a presented password (IMAP answers every refusal with ``[AUTHENTICATIONFAILED]``)."""

    VALID = "valid"
    UNKNOWN = "unknown"                      # not an app-password of ours, or wrong
    REVOKED = "revoked"
    DOMAIN_NOT_VERIFIED = "domain_not_verified"
    DOMAIN_ZERO_RETENTION = "domain_zero_retention"


@dataclass(frozen=True)
class AppPasswordInfo:
    """One app-password as listed (never the secret): ``prefix`` is ``mk_imap_AbCd1234``."""

    id: str
    label: str
    scope: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Credential:
    """What a valid app-password grants: the account, the domain, and ``address`` (None = whole domain)."""

    id: str
    account_id: str
    domain_id: str
    domain: str
    address: str | None
    scope: str


@dataclass(frozen=True)
class CheckResult:
    """``outcome`` and, when VALID, the ``credential``."""

    outcome: CheckOutcome
    credential: Credential | None = None


def _info(p: AppPassword) -> AppPasswordInfo:
    return AppPasswordInfo(p.id, p.label, p.scope, PASSWORD_PREFIX + p.prefix, p.created_at, p.last_used_at,
                           p.revoked_at)


def parse_scope(scope: str) -> tuple[str, str | None]:
    """``ADDRESS_OR_DOMAIN`` → ``(domain name, address or None)``; addresses keep their local part as
    typed, lowercased, with the domain normalised. Raises :class:`InvalidInput`."""
    scope = scope.strip()
    local, at, domain = scope.rpartition("@")
    if at:
        if not local or any(c.isspace() for c in local) or len(scope) > 320:
            raise InvalidInput(f"not a valid address: {scope!r}")
        norm = normalize_domain(domain)
        return norm, f"{local.lower()}@{norm}"
    return normalize_domain(scope), None


def create_app_password(db: Database, label: str, scope: str) -> tuple[AppPasswordInfo, str]:
    """Create an app-password for ``scope``; returns its info and the secret (shown once, never stored).

    Raises :class:`InvalidInput` (empty label, bad scope) or :class:`NotFound` (no such domain)."""
    label = label.strip()
    if not label or len(label) > 200:
        raise InvalidInput("the label must be 1 to 200 characters")
    domain_name, address = parse_scope(scope)
    random_part = "".join(secrets.choice(_BASE62) for _ in range(RANDOM_CHARS))
    secret = PASSWORD_PREFIX + random_part
    digest = _HASHER.hash(secret)
    with db.session() as s:
        account = ensure_default_account(s)
        domain = s.scalar(select(Domain).where(Domain.name == domain_name))
        if domain is None:
            raise NotFound(f"no domain {domain_name}; add it with 'mailkite domain add {domain_name}'")
        row = AppPassword(id=new_id("imp"), account_id=account.id, label=label, prefix=random_part[:PREFIX_CHARS],
                          password_hash=digest, scope=address or domain_name, domain_id=domain.id, address=address,
                          created_at=utcnow())
        s.add(row)
        s.flush()
        return _info(row), secret


def list_app_passwords(db: Database) -> list[AppPasswordInfo]:
    """Every app-password, oldest first (revoked ones included, marked)."""
    with db.read() as s:
        return [_info(p) for p in s.scalars(select(AppPassword).order_by(AppPassword.created_at, AppPassword.id))]


def revoke_app_password(db: Database, password_id: str) -> AppPasswordInfo:
    """Revoke one app-password (idempotent); raises :class:`NotFound`."""
    with db.session() as s:
        row = s.get(AppPassword, password_id)
        if row is None:
            raise NotFound(f"no app-password {password_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _info(row)


def lookup_prefix(password: str) -> str | None:
    """The lookup prefix of a presented password, or None when it cannot be one of ours."""
    if not password.startswith(PASSWORD_PREFIX) or len(password) != len(PASSWORD_PREFIX) + RANDOM_CHARS:
        return None
    return password[len(PASSWORD_PREFIX):len(PASSWORD_PREFIX) + PREFIX_CHARS]


class VerifiedCache:
    """Passwords this process has verified, so a client reconnecting (Apple Mail opens several
    connections) is not re-hashed: a keyed digest of the password (never the password) → the stored
    hash it matched. A hit counts only while the row still has that hash. Bounded (LRU)."""

    def __init__(self, size: int = 10_000) -> None:
        self._key = os.urandom(32)
        self._size = size
        self._entries: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "replace"), hashlib.sha256).digest()

    def matches(self, password: str, stored_hash: str) -> bool:
        with self._lock:
            cached = self._entries.get(self._digest(password))
        return cached is not None and secrets.compare_digest(cached, stored_hash)

    def remember(self, password: str, stored_hash: str) -> None:
        with self._lock:
            self._entries[self._digest(password)] = stored_hash
            self._entries.move_to_end(self._digest(password))
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def check_password(db: Database, password: str, *, cache: VerifiedCache | None = None) -> CheckResult:
    """Check a presented password (blocking: ~20 ms of Argon2, unless ``cache`` holds this very
    password verified against the row's current hash).

    Unknown and wrong passwords cost the same hash either way. Domains must be verified and not
    zero-retention (DESIGN.md "IMAP window")."""
    prefix = lookup_prefix(password)
    with db.read() as s:
        row = None
        domain = None
        if prefix is not None:
            found = s.execute(select(AppPassword, Domain).join(Domain, AppPassword.domain_id == Domain.id)
                              .where(AppPassword.prefix == prefix)).first()
            if found is not None:
                row, domain = found
    if row is None or domain is None:
        _verify(_DUMMY_HASH, password)
        return CheckResult(CheckOutcome.UNKNOWN)
    if cache is None or not cache.matches(password, row.password_hash):
        if not _verify(row.password_hash, password):
            return CheckResult(CheckOutcome.UNKNOWN)
        if cache is not None:
            cache.remember(password, row.password_hash)
    if row.revoked_at is not None:
        return CheckResult(CheckOutcome.REVOKED)
    if domain.zero_retention:
        return CheckResult(CheckOutcome.DOMAIN_ZERO_RETENTION)
    if domain.verified_at is None:
        return CheckResult(CheckOutcome.DOMAIN_NOT_VERIFIED)
    return CheckResult(CheckOutcome.VALID, Credential(row.id, row.account_id, domain.id, domain.name, row.address,
                                                      row.scope))


def credential_state(db: Database, credential: Credential) -> CheckOutcome:
    """Re-check a granted credential (each IMAP command): REVOKED, the domain's state, or VALID."""
    with db.read() as s:
        found = s.execute(select(AppPassword.revoked_at, Domain.verified_at, Domain.zero_retention)
                          .join(Domain, AppPassword.domain_id == Domain.id)
                          .where(AppPassword.id == credential.id)).first()
    if found is None or found[0] is not None:
        return CheckOutcome.REVOKED
    if found[2]:
        return CheckOutcome.DOMAIN_ZERO_RETENTION
    if found[1] is None:
        return CheckOutcome.DOMAIN_NOT_VERIFIED
    return CheckOutcome.VALID


def revoked_among(db: Database, password_ids: set[str] | list[str]) -> set[str]:
    """Which of ``password_ids`` are revoked or gone (one query; for sessions waiting in IDLE)."""
    ids = list(password_ids)
    if not ids:
        return set()
    with db.read() as s:
        active = set(s.scalars(select(AppPassword.id).where(AppPassword.id.in_(ids))
                               .where(AppPassword.revoked_at.is_(None))))
    return set(ids) - active


def touch_last_used(db: Database, password_id: str) -> None:
    """Record a successful login (at most once per :data:`LAST_USED_GRANULARITY`)."""
    now = utcnow()
    with db.session() as s:
        s.execute(update(AppPassword).where(AppPassword.id == password_id)
                  .where((AppPassword.last_used_at.is_(None)) | (AppPassword.last_used_at < now - LAST_USED_GRANULARITY))
                  .values(last_used_at=now))


def _verify(digest: str, password: str) -> bool:
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False
