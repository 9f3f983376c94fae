"""The store's exceptions. Callers above the store (CLI, API, SMTP) turn these into their own
answers: a one-line CLI error, an HTTP 4xx JSON body, an SMTP 4xx/5xx reply.

- :class:`StoreError`
  - :class:`NotFound`: no such domain, endpoint, event, message
  - :class:`AlreadyExists`: a unique name is taken
  - :class:`InvalidInput`: a value that cannot be stored (bad domain name, bad URL)

- :class:`SecretDecryptError` (not a StoreError: a configuration problem): a stored secret cannot be
  decrypted. Defined here, not in :mod:`store.crypto`, so callers can catch it without importing
  ``cryptography``.

Blob backend errors live in :mod:`store.blobs`.
"""


class StoreError(Exception):
    """Base class of the store's own errors."""


class NotFound(StoreError):
    """The named row does not exist."""


class AlreadyExists(StoreError):
    """A row with that unique name already exists."""


class InvalidInput(StoreError):
    """A value that cannot be stored; the message says which and why."""


class SecretDecryptError(Exception):
    """A stored secret cannot be decrypted (wrong ``SECRET_KEY`` or corrupted row)."""
