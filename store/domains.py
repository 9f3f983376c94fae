"""Receiving domains: adding, listing, and the lookup the MX listener uses at RCPT TO."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy import select

from store.accounts import ensure_default_account
from store.db import Database
from store.errors import AlreadyExists, InvalidInput, NotFound
from store.ids import new_id
from store.models import Domain, utcnow

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# Sender list entries (inbound.scan.lists): user@example.org, example.org, or .example.org.
_SENDER_LISTS = {"sender_allowlist", "sender_blocklist"}
_SENDER_ENTRY_RE = re.compile(r"^(?:[^@\s]+@)?\.?[^@\s.]+(?:\.[^@\s.]+)+$")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class DomainPolicy:
    """Per-domain switches, stored as JSON in ``domains.policy`` and set with
    ``mailkite domain set NAME key=value``. Each check enforces its own fields:

    - ``dmarc_reject``: refuse (550 5.7.1) mail failing DMARC whose sender publishes ``p=reject``.
    - ``scan_fail_open``: accept as ``unscanned`` when a scanner is down (default: 451, sender retries).
    - ``spam_reject_score``: refuse (550 5.7.1) spam scoring at least this; None = never refuse.
    - ``sender_allowlist`` / ``sender_blocklist``: sender addresses or domains decided before scanning.
    """

    dmarc_reject: bool = False
    scan_fail_open: bool = False
    spam_reject_score: float | None = None
    sender_allowlist: tuple[str, ...] = ()
    sender_blocklist: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "DomainPolicy":
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in (data or {}).items() if k in known}
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def with_setting(self, key: str, raw: str) -> "DomainPolicy":
        """A copy with ``key`` set from its text form (``on``/``off``, a number, ``none``, or a
        comma-separated list). Raises :class:`InvalidInput` for an unknown key or a bad value."""
        field_types = {f.name: f.type for f in fields(self)}
        if key not in field_types:
            raise InvalidInput(f"unknown domain setting {key!r}; known: {', '.join(self.keys())}")
        kind = str(field_types[key])
        raw = raw.strip()
        try:
            if kind == "bool":
                if raw.lower() not in _TRUE | _FALSE:
                    raise ValueError("expected on or off")
                value: Any = raw.lower() in _TRUE
            elif kind.startswith("float"):
                value = None if raw.lower() in ("", "none", "off") else float(raw)
            elif kind.startswith("tuple"):
                value = tuple(sorted({x.strip().lower() for x in raw.split(",") if x.strip()}))
                bad = [v for v in value if key in _SENDER_LISTS and not _SENDER_ENTRY_RE.match(v)]
                if bad:
                    raise ValueError(f"expected user@domain, domain or .domain entries, got {', '.join(bad)}")
            else:
                value = raw
        except ValueError as exc:
            raise InvalidInput(f"bad value for {key}: {raw!r} ({exc})") from None
        return replace(self, **{key: value})


@dataclass(frozen=True)
class DomainInfo:
    """What the SMTP session needs to know about a receiving domain (a plain value, no ORM)."""

    id: str
    account_id: str
    name: str
    zero_retention: bool
    verified: bool
    policy: DomainPolicy


def normalize_domain(name: str) -> str:
    """Lowercase ASCII (IDNA A-label) form of ``name``, without a trailing dot.

    Raises :class:`InvalidInput` for anything that is not a host name with at least two labels.
    """
    raw = name.strip().rstrip(".")
    try:
        ascii_name = raw.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        raise InvalidInput(f"not a valid domain name: {name!r}") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL_RE.match(x) for x in labels):
        raise InvalidInput(f"not a valid domain name: {name!r}")
    return ascii_name


def _info(d: Domain) -> DomainInfo:
    return DomainInfo(d.id, d.account_id, d.name, d.zero_retention, d.verified_at is not None,
                      DomainPolicy.from_json(d.policy))


def add_domain(db: Database, name: str, *, zero_retention: bool = False) -> DomainInfo:
    """Add a receiving domain to the default account. Raises :class:`InvalidInput`, :class:`AlreadyExists`."""
    norm = normalize_domain(name)
    with db.session() as s:
        account = ensure_default_account(s)
        if s.scalar(select(Domain).where(Domain.name == norm)) is not None:
            raise AlreadyExists(f"domain {norm} already exists")
        d = Domain(id=new_id("dom"), account_id=account.id, name=norm, zero_retention=zero_retention,
                   policy={}, imap_uidvalidity=int(time.time()), imap_next_uid=1)
        s.add(d)
        s.flush()
        return _info(d)


def list_domains(db: Database) -> list[DomainInfo]:
    """All domains, by name."""
    with db.read() as s:
        return [_info(d) for d in s.scalars(select(Domain).order_by(Domain.name))]


def get_domain(db: Database, name: str) -> DomainInfo:
    """One domain by name; raises :class:`NotFound`."""
    norm = normalize_domain(name)
    with db.read() as s:
        d = s.scalar(select(Domain).where(Domain.name == norm))
        if d is None:
            raise NotFound(f"no domain {norm}")
        return _info(d)


def set_verified(db: Database, name: str, verified: bool) -> DomainInfo:
    """Record the outcome of ``domain verify``; raises :class:`NotFound`."""
    norm = normalize_domain(name)
    with db.session() as s:
        d = s.scalar(select(Domain).where(Domain.name == norm))
        if d is None:
            raise NotFound(f"no domain {norm}")
        d.verified_at = utcnow() if verified else None
        return _info(d)


def update_policy(db: Database, name: str, settings: dict[str, str]) -> DomainInfo:
    """Apply ``{key: text value}`` settings (see :meth:`DomainPolicy.with_setting`) to a domain.

    Raises :class:`NotFound` or :class:`InvalidInput`; nothing changes unless every setting is valid."""
    norm = normalize_domain(name)
    with db.session() as s:
        d = s.scalar(select(Domain).where(Domain.name == norm))
        if d is None:
            raise NotFound(f"no domain {norm}")
        policy = DomainPolicy.from_json(d.policy)
        for key, raw in settings.items():
            policy = policy.with_setting(key, raw)
        d.policy = policy.to_json()
        return _info(d)


def load_domain_map(db: Database) -> dict[str, DomainInfo]:
    """Every domain keyed by its normalised name (the MX listener's RCPT cache)."""
    return {d.name: d for d in list_domains(db)}
