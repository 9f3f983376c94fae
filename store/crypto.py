"""Secrets at rest: webhook signing secrets are stored encrypted with Fernet (AES-128-CBC +
HMAC-SHA256, from ``cryptography``), keyed by HKDF-SHA256 from the server ``SECRET_KEY``."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from store.errors import SecretDecryptError

__all__ = ["SecretBox", "SecretDecryptError", "derive_key"]


def derive_key(secret_key: bytes, purpose: bytes) -> bytes:
    """32 bytes derived from the server secret for one ``purpose`` (HKDF-SHA256, RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailkite:" + purpose).derive(secret_key)


class SecretBox:
    """Encrypts and decrypts short secrets (``str`` in, ``str`` token out)."""

    def __init__(self, secret_key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, b"secrets-at-rest")))

    def encrypt(self, plaintext: str) -> str:
        """Return an opaque ASCII token for ``plaintext``."""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Return the plaintext; raises :class:`SecretDecryptError` if the token is not ours."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretDecryptError("cannot decrypt stored secret (was MAILKITE_SECRET_KEY changed?)") from exc
