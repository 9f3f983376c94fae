"""IMAP structures at rest: written with the message rows at ingest, read in bulk by the IMAP window.

The IMAP window answers ``FETCH … BODYSTRUCTURE ENVELOPE BODY.PEEK[HEADER.FIELDS (…)]`` from these
rows alone, without reading or parsing the raw blob (a 10,000-message first sync is a handful of
queries). One row per SMTP transaction (``messages.transaction_id``): the recipients' message rows
share the raw blob and so its structure. Zero-retention transactions have no row.

The shape is duck-typed on the way in (:func:`structure_row`), so the store does not depend on the
parser: any object with ``envelope``, ``bodystructure``, ``body``, ``header_block``, ``size`` and
``parts`` (part number → object with ``header_start``, ``body_start``, ``end``) will do, e.g.
``parser.imap_structure.ImapStructure``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from store.db import Database
from store.models import MessageStructure, utcnow
from store.writer import defer_insert

# Ids per query: under SQLite's bound-parameter limit, large enough that 10,000 messages take 10.
QUERY_CHUNK = 1000


class Span(NamedTuple):
    """Byte offsets of one part in the raw blob: MIME header ``[header_start, body_start)``, body
    ``[body_start, end)`` (same fields as ``parser.imap_structure.PartSpan``)."""

    header_start: int
    body_start: int
    end: int


@dataclass(frozen=True)
class ImapStructureRow:
    """The stored IMAP structures of one transaction.

    ``envelope``, ``bodystructure``, ``body``: RFC 3501 §7.4.2 wire bytes (what follows
    ``ENVELOPE ``, ``BODYSTRUCTURE ``, ``BODY ``). ``header_block``: ``BODY[HEADER]`` as stored.
    ``parts``: RFC 3501 §6.4.5 part number (``"1"``, ``"1.2"``, ``"TEXT"``, ``"3.TEXT"``) →
    :class:`Span`, decoded from ``parts_json`` on first use (a first sync never needs it).
    ``size``: RFC822.SIZE in octets (bare LFs counted as CRLF).
    """

    transaction_id: str
    envelope: bytes
    bodystructure: bytes
    body: bytes
    header_block: bytes
    parts_json: str
    size: int

    @cached_property
    def parts(self) -> dict[str, Span]:
        return {k: Span(*v) for k, v in json.loads(self.parts_json).items()}


def structure_row(transaction_id: str, structure: Any) -> ImapStructureRow:
    """An :class:`ImapStructureRow` for ``transaction_id`` from a computed structure (duck-typed)."""
    return ImapStructureRow(
        transaction_id=transaction_id, envelope=bytes(structure.envelope),
        bodystructure=bytes(structure.bodystructure), body=bytes(structure.body),
        header_block=bytes(structure.header_block),
        parts_json=json.dumps({k: [v.header_start, v.body_start, v.end] for k, v in structure.parts.items()},
                              separators=(",", ":")),
        size=int(structure.size))


def add_structure(s: Session, row: ImapStructureRow) -> None:
    """Stage ``row`` in the caller's transaction (committed with the message rows)."""
    defer_insert(s, _INSERT, [{
        "transaction_id": row.transaction_id, "envelope": row.envelope, "bodystructure": row.bodystructure,
        "body": row.body, "header_block": row.header_block, "parts": row.parts_json, "size": row.size,
        "created_at": utcnow()}])


_INSERT = insert(MessageStructure.__table__).inline()  # no RETURNING: store.writer.defer_insert


_COLUMNS = (MessageStructure.transaction_id, MessageStructure.envelope, MessageStructure.bodystructure,
            MessageStructure.body, MessageStructure.header_block, MessageStructure.parts,
            MessageStructure.size)


def structures_in(s: Session, transaction_ids: Iterable[str]) -> dict[str, ImapStructureRow]:
    """The stored structures of ``transaction_ids`` (missing ids are absent from the result).

    Runs in the caller's session; one query per :data:`QUERY_CHUNK` ids.
    """
    ids = list(dict.fromkeys(transaction_ids))
    out: dict[str, ImapStructureRow] = {}
    for i in range(0, len(ids), QUERY_CHUNK):
        chunk = ids[i:i + QUERY_CHUNK]
        rows = s.execute(select(*_COLUMNS).where(MessageStructure.transaction_id.in_(chunk)))
        for txn, env, bs, body, hdr, parts, size in rows:
            out[txn] = ImapStructureRow(txn, bytes(env), bytes(bs), bytes(body), bytes(hdr), parts, size)
    return out


def structures_for(db: Database, transaction_ids: Iterable[str]) -> dict[str, ImapStructureRow]:
    """:func:`structures_in` in a read-only transaction of its own."""
    with db.read() as s:
        return structures_in(s, transaction_ids)
