"""Webhook endpoints: URL, optional domain filter, encrypted signing secret(s), enabled state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store.accounts import ensure_default_account
from store.crypto import SecretBox
from store.db import Database
from store.domains import normalize_domain
from store.errors import InvalidInput, NotFound
from store.ids import new_id
from store.models import Domain, WebhookEndpoint, utcnow


@dataclass(frozen=True)
class EndpointInfo:
    """An endpoint as shown to operators (no secrets)."""

    id: str
    url: str
    domain: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime


def validate_url(url: str) -> str:
    """Accept absolute ``http``/``https`` URLs with a host; raises :class:`InvalidInput`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook URL must be http:// or https:// with a host: {url!r}")
    return url.strip()


def _info(ep: WebhookEndpoint, domain_name: str | None) -> EndpointInfo:
    return EndpointInfo(ep.id, ep.url, domain_name, ep.enabled, ep.disabled_reason, ep.failing_since, ep.created_at)


def add_endpoint(db: Database, box: SecretBox, url: str, secret: str, *, domain: str | None = None) -> EndpointInfo:
    """Add an endpoint with signing ``secret`` (stored encrypted). ``domain`` limits it to one domain.

    Raises :class:`InvalidInput` (bad URL) or :class:`NotFound` (unknown domain).
    """
    url = validate_url(url)
    with db.session() as s:
        account = ensure_default_account(s)
        domain_id = None
        if domain is not None:
            norm = normalize_domain(domain)
            d = s.scalar(select(Domain).where(Domain.name == norm))
            if d is None:
                raise NotFound(f"no domain {norm}; add it first with 'mailkite domain add {norm}'")
            domain_id = d.id
        ep = WebhookEndpoint(id=new_id("ep"), account_id=account.id, domain_id=domain_id, url=url,
                             secret_ciphertext=box.encrypt(json.dumps([secret])), enabled=True)
        s.add(ep)
        s.flush()
        return _info(ep, domain and normalize_domain(domain))


def list_endpoints(db: Database) -> list[EndpointInfo]:
    """All endpoints, oldest first."""
    with db.read() as s:
        rows = s.execute(select(WebhookEndpoint, Domain.name).outerjoin(Domain, WebhookEndpoint.domain_id == Domain.id)
                         .order_by(WebhookEndpoint.created_at))
        return [_info(ep, name) for ep, name in rows]


def decrypt_secrets(box: SecretBox, ciphertext: str) -> list[str]:
    """The ``whsec_`` secrets in an endpoint's ``secret_ciphertext``, newest first (several during a
    rotation). Raises :class:`store.crypto.SecretDecryptError`."""
    return list(json.loads(box.decrypt(ciphertext)))


def endpoint_secrets(box: SecretBox, ep: WebhookEndpoint) -> list[str]:
    """The endpoint's ``whsec_`` secrets, newest first."""
    return decrypt_secrets(box, ep.secret_ciphertext)


def rotate_secret(db: Database, box: SecretBox, endpoint_id: str, new_secret: str) -> None:
    """Make ``new_secret`` current while keeping the previous one signing too, so receivers can switch
    over (Standard Webhooks: several space-separated signatures). Raises :class:`NotFound`."""
    with db.session() as s:
        ep = s.get(WebhookEndpoint, endpoint_id)
        if ep is None:
            raise NotFound(f"no endpoint {endpoint_id}")
        current = endpoint_secrets(box, ep)
        ep.secret_ciphertext = box.encrypt(json.dumps([new_secret, current[0]]))


def endpoints_for_domain(session: Session, account_id: str, domain_id: str) -> list[WebhookEndpoint]:
    """Enabled endpoints of ``account_id`` that take mail for ``domain_id`` (or for every domain)."""
    return list(session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.account_id == account_id,
            WebhookEndpoint.enabled.is_(True),
            or_(WebhookEndpoint.domain_id.is_(None), WebhookEndpoint.domain_id == domain_id),
        ).order_by(WebhookEndpoint.created_at)
    ))


def disable_endpoint(session: Session, endpoint_id: str, reason: str) -> None:
    """Disable an endpoint and record why (shown by ``webhook list`` and the dashboard)."""
    ep = session.get(WebhookEndpoint, endpoint_id)
    if ep is not None and ep.enabled:
        ep.enabled = False
        ep.disabled_reason = reason
        ep.disabled_at = utcnow()


def enable_endpoint(db: Database, endpoint_id: str) -> None:
    """Re-enable an endpoint and clear its failure streak; raises :class:`NotFound`."""
    with db.session() as s:
        ep = s.get(WebhookEndpoint, endpoint_id)
        if ep is None:
            raise NotFound(f"no endpoint {endpoint_id}")
        ep.enabled, ep.disabled_reason, ep.disabled_at, ep.failing_since = True, None, None, None
