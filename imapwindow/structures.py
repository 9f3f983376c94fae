"""Where ENVELOPE, BODYSTRUCTURE, the top-level header and part offsets come from.

The parser computes an :class:`ImapStructure` per message (``parser.imap_structure.compute``) and
the store keeps one row per SMTP transaction; :class:`StructureSource` reads them in bulk so header
listings and structure are served from the database without reading blobs (PERF-NOTES.md: reading
whole messages made pymap's first sync take 429 s). Messages without a stored row (stored before
the table existed) are computed from their raw blob once and cached in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Protocol, Sequence

from store.blobs import BlobStore
from store.db import Database

CACHE_SIZE = 512


class StructureSource(Protocol):
    """Blocking bulk reader: ``get_many([(transaction_id, raw_key), …]) -> {transaction_id: structure}``."""

    def get_many(self, items: Sequence[tuple[str, str | None]]) -> dict[str, Any]: ...


class StoredStructures:
    """The store's structure rows (``bulk_read(db, transaction_ids)``), else computed from the blob."""

    def __init__(self, db: Database, blobs: BlobStore, compute: Callable[[bytes], Any],
                 bulk_read: Callable[[Database, list[str]], dict[str, Any]] | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.compute = compute
        self.bulk_read = bulk_read
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, items: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
        wanted = list(dict.fromkeys(t for t, _ in items))
        found: dict[str, Any] = {}
        if self.bulk_read is not None and wanted:
            found.update(self.bulk_read(self.db, wanted))
        raw_keys = dict(items)
        for txn in wanted:
            if txn in found:
                continue
            with self._lock:
                hit = self._cache.get(txn)
                if hit is not None:
                    self._cache.move_to_end(txn)
            if hit is None:
                key = raw_keys.get(txn)
                if not key:
                    continue
                hit = self.compute(self.blobs.get(key))
                with self._lock:
                    self._cache[txn] = hit
                    if len(self._cache) > CACHE_SIZE:
                        self._cache.popitem(last=False)
            found[txn] = hit
        return found


def default_structures(db: Database, blobs: BlobStore) -> StoredStructures:
    """The production source: the parser's ``compute`` and the store's bulk read when present."""
    from parser import imap_structure  # noqa: PLC0415 - optional until the structure table lands

    from store.imap_structures import structures_for  # noqa: PLC0415

    return StoredStructures(db, blobs, imap_structure.compute, structures_for)
