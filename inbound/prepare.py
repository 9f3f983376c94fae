"""The part of ingest that runs in the parse processes: parse, IMAP structure and, for a local blob
store, the two blob writes.

``prepare(stored_raw, received_at, keep=…, blobs=…)`` → :class:`Prepared`. When the message is kept
and the blob store is a local folder (``BlobStore.local_url``), the process that already holds the
bytes writes the raw message and the parsed JSON itself (unsynced: the MX's group-commit writer
syncs the store once per batch before committing the rows, store/writer.py), so neither the bytes
nor the large parsed document travel back to the MX, and the MX's event loop hands no file writes
to threads (bench/ingest.py: MX CPU 4.0 → 3.2 ms per message). With S3 a put is a network round
trip, better made concurrently from the MX's threads, so there the MX writes as before.

A module-level function of plain, picklable arguments, for a spawn ``ProcessPoolExecutor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parser import jsonbytes
from parser.imap_structure import ImapStructure
from parser import ingest
from parser.ingest import parse_for_ingest
from parser.model import Address, ParsedMessage
from store.blobs import BlobStore, open_blob_store


@dataclass(frozen=True)
class BlobKeys:
    """Where one transaction's blobs go: ``raw/YYYY/MM/DD/<txn>.eml`` and ``parsed/…/<txn>.json``."""

    transaction_id: str
    raw: str
    parsed: str

    @classmethod
    def for_transaction(cls, transaction_id: str, received_at: datetime) -> "BlobKeys":
        day = received_at.strftime("%Y/%m/%d")
        return cls(transaction_id, f"raw/{day}/{transaction_id}.eml", f"parsed/{day}/{transaction_id}.json")


@dataclass(frozen=True)
class ParsedFacts:
    """What the store and the SMTP log need of a parsed message (the rest is in the parsed JSON)."""

    size: int
    sha256: str
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    thread_key: str | None
    subject: str | None
    from_: Address | None
    date: datetime | None
    parse_errors: list[str]

    @classmethod
    def of(cls, p: ParsedMessage) -> "ParsedFacts":
        return cls(p.size, p.sha256, p.message_id, p.in_reply_to, list(p.references), p.thread_key, p.subject,
                   p.from_, p.date, list(p.parse_errors))


@dataclass(frozen=True)
class Prepared:
    """``facts`` always; ``parsed`` (the whole :class:`ParsedMessage`) unless the blobs were written
    here and the caller did not ask for it; ``structure`` when kept; ``blobs_written`` True when
    both blobs are in the store (not yet synced)."""

    facts: ParsedFacts
    parsed: ParsedMessage | None
    structure: ImapStructure | None
    blobs_written: bool


_stores: dict[str, BlobStore] = {}  # per process: the local store by URL


def prepare(stored_raw: bytes, received_at: int, *, keep: bool, blobs: tuple[str, BlobKeys] | None = None,
            need_parsed: bool = True) -> Prepared:
    """Parse (``parser.ingest.parse_for_ingest``: never raises on content) and, with ``blobs`` =
    ``(local store URL, keys)``, write the stored bytes and the parsed JSON there unsynced.

    Raises :class:`store.blobs.BlobError` when a write fails (the caller removes both keys)."""
    parsed, structure = parse_for_ingest(stored_raw, received_at, store=keep)
    if blobs is None:
        return Prepared(ParsedFacts.of(parsed), parsed, structure, False)
    url, keys = blobs
    store = _stores.get(url) or _stores.setdefault(url, open_blob_store(url))
    write_blobs(store, keys, stored_raw, parsed.to_json())
    return Prepared(ParsedFacts.of(parsed), parsed if need_parsed else None, structure, True)


def write_blobs(store: BlobStore, keys: BlobKeys, stored_raw: bytes, parsed_json: dict[str, Any]) -> None:
    """Both blobs of a transaction, unsynced (see the module docstring). Raises ``BlobError``."""
    store.put(keys.raw, stored_raw, "message/rfc822", sync=False)
    store.put(keys.parsed, jsonbytes.dumps(parsed_json), "application/json", sync=False)


def warm_up() -> None:
    """A parse process's initializer: import and exercise the parsing code once (``parser.ingest``)."""
    ingest.warm_up()
