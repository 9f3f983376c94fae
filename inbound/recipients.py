"""RCPT TO acceptance: which addresses we take mail for.

Any address on a domain added with ``mailkite domain add`` is accepted (catch-all); everything else
is relaying, refused. Domain rows are cached in memory (refreshed every :data:`REFRESH_S` seconds,
and at once on a miss, at most every :data:`MISS_REFRESH_S` seconds) so the SMTP event loop never
waits on the database per recipient.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from store.domains import DomainInfo

REFRESH_S = 10.0
MISS_REFRESH_S = 1.0


def split_address(address: str) -> tuple[str, str] | None:
    """``local@domain`` → ``(local, domain lowercased)``; None when there is no domain part."""
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        return None
    return local, domain.strip().rstrip(".").lower()


def normalize_recipient(address: str) -> str:
    """The canonical inbox address: local part as sent, domain lowercased (RFC 5321 §2.4)."""
    parts = split_address(address)
    return f"{parts[0]}@{parts[1]}" if parts else address


class DomainDirectory:
    """Cached view of the domain table. ``load`` returns ``{name: DomainInfo}`` (blocking; it runs
    in a worker thread)."""

    def __init__(self, load: Callable[[], dict[str, DomainInfo]]) -> None:
        self._load = load
        self._domains: dict[str, DomainInfo] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self, min_age: float) -> None:
        async with self._lock:
            if time.monotonic() - self._loaded_at < min_age:
                return
            self._domains = await asyncio.to_thread(self._load)
            self._loaded_at = time.monotonic()

    async def lookup(self, domain: str) -> DomainInfo | None:
        """The domain's info if we receive mail for it, else None (re-reads the table on a miss)."""
        domain = domain.lower().rstrip(".")
        if time.monotonic() - self._loaded_at > REFRESH_S:
            await self._refresh(REFRESH_S)
        info = self._domains.get(domain)
        if info is None:
            await self._refresh(MISS_REFRESH_S)
            info = self._domains.get(domain)
        return info

    async def for_address(self, address: str) -> DomainInfo | None:
        """The receiving domain of ``address``, or None (not ours, or no domain part)."""
        parts = split_address(address)
        if parts is None:
            return None
        try:
            ascii_domain = parts[1].encode("idna").decode("ascii")
        except UnicodeError:
            return None
        return await self.lookup(ascii_domain)
