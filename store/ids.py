"""Public identifiers: a type prefix and a time-ordered random body (``msg_…``, ``evt_…``).

The body is 26 Crockford-base32 characters of a ULID (48-bit millisecond time + 80 random bits),
so ids sort by creation time and are safe in URLs and file names.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase


def _ulid() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """Return ``{prefix}_{ulid}``, e.g. ``new_id("msg") -> "msg_01jd…"`` (30+ characters)."""
    return f"{prefix}_{_ulid()}"
