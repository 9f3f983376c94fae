"""Benchmark: IMAP structures at ingest and at first sync.

Prints
1. ``compute()`` throughput over the shared corpus (CRLF-normalised as SMTP delivers it), in
   messages/s and MB/s, single process;
2. for 10,000 stored messages, on SQLite and on PostgreSQL: the time to load every structure in
   bulk (``store.imap_structures.structures_for``) and the time to render what an Apple-Mail-style
   first sync asks for (``BODYSTRUCTURE`` + ``BODY.PEEK[HEADER.FIELDS (…)]``) from those rows,
   without touching a blob.

Usage: ``.venv/bin/python bench/imap_structure.py [--messages 10000] [--pg-url URL]``
(PostgreSQL: a temporary database is created on the local server and dropped afterwards).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from parser.imap_structure import compute, header_fields  # noqa: E402
from store.db import Database  # noqa: E402
from store.imap_structures import add_structure, structure_row, structures_for  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from tests.support.corpus import CORPUS  # noqa: E402

APPLE_MAIL = ("DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE BCC IN-REPLY-TO "
              "REPLY-TO LIST-POST X-PRIORITY").split()
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def corpus() -> list[bytes]:
    return [re.sub(rb"(?<!\r)\n", b"\r\n", p.read_bytes()) for p in sorted(CORPUS.rglob("*.eml"))]


def bench_compute(messages: list[bytes], rounds: int = 3) -> None:
    total = sum(map(len, messages))
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for m in messages:
            compute(m)
        best = min(best, time.perf_counter() - t)
    small = [m for m in messages if len(m) < 20_000]
    t = time.perf_counter()
    for m in small:
        compute(m)
    small_s = time.perf_counter() - t
    print(f"compute(): {len(messages)} corpus messages, {total / 1e6:.1f} MB: {best:.2f} s = "
          f"{len(messages) / best:.0f} msg/s, {total / 1e6 / best:.1f} MB/s (best of {rounds})")
    print(f"compute(): the {len(small)} messages under 20 KB: {len(small) / small_s:.0f} msg/s")


def bench_load(label: str, url: str, messages: list[bytes], count: int) -> None:
    db = Database(url)
    upgrade(db)
    structures = [compute(m) for m in messages]
    ids = [f"txn_{i:06d}" for i in range(count)]
    t = time.perf_counter()
    with db.session() as s:
        for i, txn in enumerate(ids):
            add_structure(s, structure_row(txn, structures[i % len(structures)]))
    write_s = time.perf_counter() - t
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        rows = structures_for(db, ids)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        out = bytearray()
        for txn in ids:
            row = rows[txn]
            out += b"BODYSTRUCTURE " + row.bodystructure + b" BODY[HEADER.FIELDS (...)] "
            out += header_fields(row.header_block, APPLE_MAIL)
        render_s = time.perf_counter() - t
        runs.append((load_s, render_s, len(out)))
    load_s, render_s, size = min(runs)
    assert len(rows) == count
    print(f"{label}: wrote {count} rows in {write_s:.2f} s; bulk load {load_s:.3f} s; "
          f"render BODYSTRUCTURE + HEADER.FIELDS {render_s:.3f} s ({size / 1e6:.1f} MB of answers); "
          f"load + render {load_s + render_s:.2f} s (best of 3)")
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--pg-url", default=PG_ADMIN, help="an admin URL of a PostgreSQL server; '' to skip")
    args = ap.parse_args()
    messages = corpus()
    bench_compute(messages)
    with tempfile.TemporaryDirectory() as tmp:
        bench_load("SQLite", f"sqlite:///{tmp}/bench.db", messages, args.messages)
    if args.pg_url:
        import psycopg

        name = f"mk_bench_{uuid.uuid4().hex[:8]}"
        admin = args.pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            bench_load("PostgreSQL", args.pg_url.rsplit("/", 1)[0] + "/" + name, messages, args.messages)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
