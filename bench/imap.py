"""IMAP window benchmark (issue 5): prints figures, asserts nothing.

    .venv/bin/python bench/imap.py [--messages 10000] [--idle 1000] [--database-url URL]

1. Stores N messages (the shared corpus, cycled) into one INBOX through the store API, with the
   IMAP structures the ingest computes.
2. Starts ``mailkite imap`` as its own process (SQLite or PostgreSQL, local blobs, our Redis).
3. Times with Python's imaplib over TLS (like the Dovecot figures in PERF-NOTES.md):
   - an Apple-Mail-style first sync ``UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
     BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (…)])`` right after the server starts (cold) and again (warm);
   - ``SEARCH UNSEEN``; ``UID FETCH 1:1000 BODY.PEEK[]``.
4. Opens ``--idle`` connections that LOGIN, SELECT INBOX and IDLE; reports the server's RSS, then
   delivers one message through the ingest pipeline and reports how long until every connection
   got its ``* n EXISTS``.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from parser.imap_structure import compute  # noqa: E402
from store.app_passwords import create_app_password  # noqa: E402
from store.blobs import LocalBlobStore  # noqa: E402
from store.db import Database  # noqa: E402
from store.domains import add_domain, get_domain, set_verified  # noqa: E402
from store.messages import NewTransaction, Recipient, record_transaction_in  # noqa: E402
from store.ids import new_id  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import utcnow  # noqa: E402
from tests.support.servers import RedisProcess, free_port, wait_for_port  # noqa: E402
from tests.support.corpus import CORPUS  # noqa: E402

APPLE_FIELDS = ("DATE SUBJECT FROM SENDER TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION "
                "IN-REPLY-TO REPLY-TO LINES LIST-POST X-PRIORITY")
DOMAIN = "bench.test"


def corpus_messages(limit_bytes: int = 512 * 1024) -> list[bytes]:
    """The corpus .eml files (under ``limit_bytes`` each), with CRLF line ends as SMTP delivers them."""
    out = []
    for path in sorted(CORPUS.rglob("*.eml")):
        raw = path.read_bytes()
        if len(raw) <= limit_bytes:
            out.append(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return out


def populate(db: Database, blobs: LocalBlobStore, n: int) -> float:
    """Store ``n`` messages for bob@bench.test; returns seconds taken."""
    start = time.perf_counter()
    sources = corpus_messages()
    structures = [compute(raw) for raw in sources]
    dom = get_domain(db, DOMAIN)
    rcpt = Recipient(f"bob@{DOMAIN}", dom, (f"bob@{DOMAIN}",))
    batch = 500
    for first in range(0, n, batch):
        with db.session() as s:
            for i in range(first, min(n, first + batch)):
                k = i % len(sources)
                raw = sources[k]
                txn = new_id("txn")
                key = f"raw/bench/{txn}.eml"
                blobs.put(key, raw, "message/rfc822")
                record_transaction_in(s, NewTransaction(
                    transaction_id=txn, recipients=[rcpt], mail_from="sender@example.org", client_ip="127.0.0.1",
                    helo="bench", tls=True, received_at=utcnow().astimezone(timezone.utc), size=len(raw),
                    sha256="0" * 64, raw_key=key, parsed_key=None, create_events=False,
                    imap_structure=structures[k]))
    return time.perf_counter() - start


SENT_AT = [0.0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(fn, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


async def idle_clients(port: int, password: str, count: int, ctx: ssl.SSLContext, deliver, measure
                       ) -> tuple[float, int, list]:
    """Open ``count`` IDLE connections, ``measure()`` the server, then ``deliver()`` and wait for
    EXISTS on each. Returns (seconds to connect them all, the measure, per-connection push latencies)."""
    conns = []
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(50)

    async def open_one(i: int):
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, limit=1 << 20)
            await reader.readline()
            writer.write(b"a LOGIN u " + password.encode() + b"\r\nb SELECT INBOX\r\nc IDLE\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    raise ConnectionError(f"connection {i} closed during setup")
                if line.startswith(b"+ idling"):
                    break
            conns.append((reader, writer))

    await asyncio.gather(*(open_one(i) for i in range(count)))
    setup_s = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    measured = measure()

    async def wait_exists(reader) -> float:
        while True:
            line = await reader.readline()
            if not line or line.endswith(b"EXISTS\r\n"):
                return time.perf_counter()

    waiters = [asyncio.create_task(wait_exists(r)) for r, _ in conns]
    await asyncio.sleep(0.5)
    sent = time.perf_counter()
    SENT_AT[0] = sent
    await asyncio.to_thread(deliver)
    done = await asyncio.wait_for(asyncio.gather(*waiters), 60)
    latencies = [d - sent for d in done]
    for _, w in conns:
        w.write(b"DONE\r\nz LOGOUT\r\n")
        w.close()
    return setup_s, measured, latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    ap.add_argument("--idle-only", action="store_true", help="skip the fetch timings (RSS of a fresh server)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mk-bench-imap-"))
    redis = RedisProcess(tmp / "redis")
    redis.start()
    db_url = args.database_url or f"sqlite:///{tmp / 'mailkite.db'}"
    db = Database(db_url)
    upgrade(db)
    blobs = LocalBlobStore(tmp / "blobs")
    add_domain(db, DOMAIN)
    set_verified(db, DOMAIN, True)
    password = create_app_password(db, "bench", DOMAIN)[1]
    populate_s = populate(db, blobs, args.messages)
    print(f"stored {args.messages} messages in {populate_s:.1f} s ({db_url.split(':')[0]})")

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILKITE_")}
    env.update({"MAILKITE_DATA_DIR": str(tmp), "MAILKITE_DATABASE_URL": db_url,
                "MAILKITE_BLOB_URL": (tmp / "blobs").as_uri(), "MAILKITE_REDIS_URL": redis.url,
                "MAILKITE_IMAP_LISTEN": f"127.0.0.1:{port}", "MAILKITE_HOSTNAME": "mx.mailkite.test",
                "MAILKITE_IMAP_MAX_CONNECTIONS_PER_ACCOUNT": str(args.idle + 10), "MAILKITE_LOG_LEVEL": "WARNING"})
    server = subprocess.Popen([sys.executable, "-m", "mailkite", "imap"], env=env, cwd=tmp)
    try:
        wait_for_port(port, timeout=60)
        ctx = ssl.create_default_context(cafile=str(tmp / "tls" / "selfsigned.crt"))
        ctx.check_hostname = False
        rss_start = rss_kib(server.pid)

        if not args.idle_only:
            _fetch_timings(args, port, password, ctx, server.pid, rss_start)

        if args.idle:
            _idle(args, port, password, ctx, server, redis, db, blobs)
    finally:
        server.terminate()
        server.wait(10)
        redis.stop()
        db.dispose()
    return 0


def _fetch_timings(args, port: int, password: str, ctx: ssl.SSLContext, pid: int, rss_start: int) -> None:
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    m.login("bob", password)
    sync_cmd = f"(UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS ({APPLE_FIELDS})])"

    def first_sync():
        m.select("INBOX")
        typ, data = m.uid("FETCH", "1:*", sync_cmd)
        heads = [d[0] if isinstance(d, tuple) else d for d in data]
        got = sum(1 for h in heads if h.split(b" ", 2)[1:2] == [b"(UID"])
        assert typ == "OK" and got == args.messages, (typ, got, data[:3])

    cold = timed(first_sync)[0]
    warm = timed(first_sync, 3)
    search = timed(lambda: m.search(None, "UNSEEN"), 20)
    typ, data = m.search(None, "UNSEEN")
    assert len(data[0].split()) == args.messages
    nbodies = min(1000, args.messages)
    body_bytes = [0]

    def bodies():
        typ, data = m.uid("FETCH", f"1:{nbodies}", "(BODY.PEEK[])")
        body_bytes[0] = sum(len(d[1]) for d in data if isinstance(d, tuple))

    body_t = timed(bodies, 3)
    m.logout()
    rss_after_sync = rss_kib(pid)

    print(f"first sync of {args.messages} (Apple Mail style UID FETCH 1:*): cold {cold:.2f} s, "
          f"warm {statistics.median(warm):.2f} s (target <= 2 s; Dovecot 1.13 s cold, 0.18 s warm)")
    print(f"SEARCH UNSEEN: {statistics.median(search) * 1000:.1f} ms median of 20 (Dovecot 0.9 ms)")
    mb = body_bytes[0] / 1e6
    bt = statistics.median(body_t)
    print(f"{nbodies} full bodies (BODY.PEEK[]): {bt:.2f} s, {mb:.1f} MB, {mb / bt:.0f} MB/s over TLS "
          f"(Dovecot 0.17 s)")
    print(f"server RSS: {rss_start / 1024:.1f} MiB at start, {rss_after_sync / 1024:.1f} MiB after the syncs")


def _idle(args, port: int, password: str, ctx: ssl.SSLContext, server, redis, db, blobs) -> None:
    from delivery.links import LinkSigner  # noqa: PLC0415
    from delivery.sender import AsyncWebhookSender  # noqa: PLC0415
    from imapwindow.notify import Publisher  # noqa: PLC0415
    from inbound.pipeline import IngestPipeline  # noqa: PLC0415
    from inbound.types import SmtpEnvelope  # noqa: PLC0415
    from store.crypto import SecretBox  # noqa: PLC0415

    publisher = Publisher(redis.url)
    committed: list[float] = []

    def deliver():
        async def run():
            pipeline = IngestPipeline(
                db=db, blobs=blobs, links=LinkSigner(b"k" * 32, "http://127.0.0.1:1", 60),
                zr_sender=AsyncWebhookSender(5.0), secret_box=SecretBox(b"k" * 32),
                on_stored=lambda stored: (committed.append(time.perf_counter()),
                                          publisher.mail_stored({x.domain for x in stored})))
            env_ = SmtpEnvelope(mail_from="a@example.org", rcpt_to=(f"bob@{DOMAIN}",), client_ip="127.0.0.1",
                                helo="bench", tls=True, received_at=utcnow())
            rcpt = Recipient(f"bob@{DOMAIN}", get_domain(db, DOMAIN), (f"bob@{DOMAIN}",))
            out = await pipeline.run(env_, b"From: a@example.org\r\nSubject: push\r\n\r\nnew\r\n", [rcpt])
            assert out.outcome == "accepted", out
        asyncio.run(run())

    rss_before_idle = rss_kib(server.pid)
    setup_s, idle_rss, lat = asyncio.run(idle_clients(port, password, args.idle, ctx, deliver,
                                                      lambda: rss_kib(server.pid)))
    time.sleep(0.2)
    publisher.close()
    print(f"{args.idle} IDLE connections opened in {setup_s:.1f} s")
    print(f"new mail pushed to all {len(lat)} IDLE connections: max {max(lat) * 1000:.0f} ms, "
          f"median {statistics.median(lat) * 1000:.0f} ms after delivery started (ingest included); "
          f"max {(max(lat) - (committed[0] - SENT_AT[0])) * 1000:.0f} ms after the commit (target: all within 1 s)")
    print(f"server RSS with {args.idle} IDLE connections: {idle_rss / 1024:.1f} MiB = {idle_rss * 1024 / 1e6:.1f} MB "
          f"({(idle_rss - rss_before_idle) / max(1, args.idle):.1f} KiB per connection over "
          f"{rss_before_idle / 1024:.1f} MiB before; target <= 100 MB total)")


if __name__ == "__main__":
    sys.exit(main())
