"""Signed, expiring links to stored content (attachments and raw messages), served by the web role.

A link is ``{base}/v1/messages/{msg}/attachments/{att}?expires={unix}&signature={hex}`` where the
signature is HMAC-SHA256 (key derived from ``SECRET_KEY``) over the path and expiry, so the web role
can check it without a database lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import quote

from store.crypto import derive_key

_EXPIRES = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only


class LinkSigner:
    """Makes and checks signed links. ``ttl_s``: lifetime in seconds (``ATTACHMENT_URL_TTL_S``)."""

    def __init__(self, secret_key: bytes, base_url: str, ttl_s: int) -> None:
        self._key = derive_key(secret_key, b"signed-links")
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s

    def _sig(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign_path(self, path: str, *, now: float | None = None) -> str:
        """A full URL for ``path`` (starting with ``/``), valid for ``ttl_s`` seconds."""
        expires = int((now if now is not None else time.time()) + self.ttl_s)
        return f"{self.base_url}{path}?expires={expires}&signature={self._sig(path, expires)}"

    def attachment_url(self, message_id: str, attachment_id: str) -> str:
        return self.sign_path(f"/v1/messages/{quote(message_id)}/attachments/{quote(attachment_id)}")

    def raw_url(self, message_id: str) -> str:
        return self.sign_path(f"/v1/messages/{quote(message_id)}/raw")

    def verify(self, path: str, expires: str | None, signature: str | None, *, now: float | None = None) -> bool:
        """True when ``signature`` matches ``path``/``expires`` and the link has not expired; False
        (never an exception) for anything a client can put in the query: ``expires`` must be 1-12
        ASCII digits (``str.isdigit`` also takes "²", which ``int`` refuses), and the signature is
        compared as bytes (``hmac.compare_digest`` raises on non-ASCII ``str``)."""
        if not expires or not signature or not _EXPIRES.fullmatch(expires):
            return False
        if int(expires) < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._sig(path, int(expires)).encode(), signature.encode("utf-8", "surrogatepass"))
