"""Mailbox views: one shared, append-only index per (scope, mailbox) per process.

Messages are never expunged (DESIGN.md "IMAP window": nothing is removed), so a view's UIDs only
grow, in ascending order (store.imap), and a message's sequence number never changes: sequence
number n is ``uids[n - 1]``. Every session that selects the same mailbox of the same scope shares
one :class:`MailboxView` (compact arrays: ~17 bytes a message), and only remembers how many
messages it has announced (``EXISTS``) and up to which mod-sequence it has reported flag changes.

A view is refreshed with one query (new UIDs, or mod-sequences above its watermark) when a
notification names its domain (:mod:`imapwindow.notify`), after a STORE, and every
:data:`SAFETY_REFRESH_S` seconds while in use — never by polling per connection.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from array import array
from dataclasses import dataclass
from typing import Callable

from store.db import Database
from store.imap import Scope, ViewDelta, load_view

log = logging.getLogger("mailkite.imap")

MAX_CHANGE_LOG = 20_000


@dataclass(frozen=True)
class ViewKey:
    """Identity of a view: the scope and the mailbox name."""

    scope: Scope
    mailbox: str


class MailboxView:
    """The shared index of one mailbox of one scope. ``uids``/``modseqs`` are ``array('q')``, ``flags``
    a bytearray of persisted flag bits. ``changes`` is a log of ``(modseq, index)`` in the order
    changes were loaded, so a session can find what changed since its watermark."""

    def __init__(self, key: ViewKey, domain: str) -> None:
        self.key = key
        self.domain = domain
        self.uidvalidity = 0
        self.uids = array("q")
        self.modseqs = array("q")
        self.flags = bytearray()
        self.watermark = 0          # highest mod-sequence loaded
        self.changes: list[tuple[int, int]] = []
        self.changes_floor = 0      # changes at or below this mod-sequence were dropped from the log
        self.listeners: set[Callable[[], None]] = set()
        self.loaded = False
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self.uids)

    @property
    def highest_modseq(self) -> int:
        """RFC 7162 HIGHESTMODSEQ of this view (the largest mod-sequence of its messages; 1 when empty)."""
        return max(self.watermark, 1)

    def uidnext(self) -> int:
        """RFC 3501 UIDNEXT: changes exactly when this view gets new messages (§2.3.1.1)."""
        return (self.uids[-1] + 1) if self.uids else 1

    def index_of_uid(self, uid: int) -> int | None:
        """0-based index of ``uid``, or None when not in the view."""
        i = bisect.bisect_left(self.uids, uid)
        return i if i < len(self.uids) and self.uids[i] == uid else None

    def uid_range(self, lo: int, hi: int, limit: int) -> range:
        """Indexes (below ``limit``) of the UIDs in ``[lo, hi]``."""
        a = bisect.bisect_left(self.uids, lo, 0, limit)
        b = bisect.bisect_right(self.uids, hi, 0, limit)
        return range(a, b)

    async def refresh(self, db: Database) -> bool:
        """Load new and changed messages (one query, in a worker thread); wake listeners when any.
        Returns True when something changed."""
        async with self._lock:
            after_uid = self.uids[-1] if self.uids else 0
            delta: ViewDelta = await asyncio.to_thread(load_view, db, self.key.scope, self.key.mailbox,
                                                       after_uid=after_uid,
                                                       after_modseq=self.watermark if self.loaded else None)
            changed = self._apply(delta)
        if changed:
            for wake in list(self.listeners):
                wake()
        return changed

    def _apply(self, delta: ViewDelta) -> bool:
        self.uidvalidity = delta.uidvalidity
        first_load = not self.loaded
        self.loaded = True
        changed = False
        for row in delta.rows:
            if self.uids and row.uid <= self.uids[-1]:
                i = self.index_of_uid(row.uid)
                if i is None or (self.flags[i] == row.flags and self.modseqs[i] == row.modseq):
                    continue
                self.flags[i] = row.flags
                self.modseqs[i] = max(self.modseqs[i], row.modseq)
                self.changes.append((row.modseq, i))
            else:
                self.uids.append(row.uid)
                self.flags.append(row.flags)
                self.modseqs.append(row.modseq)
                if not first_load:
                    self.changes.append((row.modseq, len(self.uids) - 1))
            self.watermark = max(self.watermark, row.modseq)
            changed = True
        if first_load:
            self.changes_floor = self.watermark
        if len(self.changes) > MAX_CHANGE_LOG:
            drop = len(self.changes) - MAX_CHANGE_LOG // 2
            self.changes_floor = max(m for m, _ in self.changes[:drop])
            del self.changes[:drop]
        return changed

    def changed_since(self, modseq: int, limit: int) -> list[int]:
        """Indexes (below ``limit``) whose mod-sequence is above ``modseq``, ascending."""
        if modseq >= self.changes_floor:
            found = {i for m, i in self.changes if m > modseq and i < limit}
        else:
            found = {i for i in range(min(limit, len(self.modseqs))) if self.modseqs[i] > modseq}
        return sorted(found)


class ViewRegistry:
    """The process's views, shared by sessions; a view lives while a session uses it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._views: dict[ViewKey, MailboxView] = {}
        self._users: dict[ViewKey, int] = {}
        self._loading: dict[ViewKey, asyncio.Lock] = {}

    async def acquire(self, scope: Scope, mailbox: str, domain: str) -> MailboxView:
        """The view for ``scope``/``mailbox``, loaded (one query) on first use."""
        key = ViewKey(scope, mailbox)
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:
            view = self._views.get(key)
            if view is None:
                view = MailboxView(key, domain)
                await view.refresh(self.db)
                self._views[key] = view
            self._users[key] = self._users.get(key, 0) + 1
        return view

    def release(self, view: MailboxView) -> None:
        """A session stopped using ``view``; the last one drops it."""
        key = view.key
        n = self._users.get(key, 0) - 1
        if n <= 0:
            self._users.pop(key, None)
            self._views.pop(key, None)  # its load lock stays: a waiter may hold it
        else:
            self._users[key] = n

    def views_for_domain(self, domain: str) -> list[MailboxView]:
        return [v for v in self._views.values() if v.domain == domain]

    def all_views(self) -> list[MailboxView]:
        return list(self._views.values())

    async def refresh_domain(self, domain: str) -> None:
        """Refresh every view of ``domain`` (a notification arrived)."""
        for view in self.views_for_domain(domain):
            try:
                await view.refresh(self.db)
            except Exception:  # noqa: BLE001 - one failed refresh must not stop the others
                log.exception("imap.refresh_failed", extra={"kv": {"domain": domain}})

    async def refresh_all(self) -> None:
        for view in self.all_views():
            try:
                await view.refresh(self.db)
            except Exception:  # noqa: BLE001
                log.exception("imap.refresh_failed", extra={"kv": {"domain": view.domain}})
