"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme").

``webhook-signature`` = space-separated ``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``,
keyed with the base64-decoded part of each ``whsec_`` secret (several during a rotation). Receivers
verify with the ``standardwebhooks`` or ``svix`` libraries unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # 192 bits; the spec asks for 24 to 64 bytes


class InvalidSecret(ValueError):
    """Not a ``whsec_`` + base64 secret."""


def generate_secret() -> str:
    """A new endpoint secret: ``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret. Raises :class:`InvalidSecret`."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("webhook secrets start with whsec_")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (ValueError, TypeError) as exc:
        raise InvalidSecret("webhook secret is not valid base64") from exc


def sign(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for ``body`` (bytes exactly as sent)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    sigs = [
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode("ascii")
        for s in secrets
    ]
    return " ".join(sigs)


def webhook_headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """All headers of one delivery: ``webhook-id``, ``webhook-timestamp`` (Unix seconds),
    ``webhook-signature``, and ``content-type: application/json``."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body),
    }
