"""Benchmark: latency the scan stage adds per message, and messages/s, with both scanners on.

Runs :class:`inbound.scan.scanner.MessageScanner` (rspamd + clamd, the production adapters) on
realistic 20 KB and 2 MB messages. Without ``--spam-url``/``--virus-url`` it starts the same real
daemons as the tests (Debian's rspamd and clamd, unprivileged, on loopback ports; rspamd resolves
through a local NXDOMAIN server, i.e. a fast local resolver with nothing listed).

The client IP given to rspamd is public by default (``--client-ip``), so rspamd runs its RBL, DNSWL
and host-name checks (each an NXDOMAIN from the local resolver); ``--client-ip 127.0.0.1`` shows
rspamd without its network checks.

Latency: messages scanned one at a time (authentication already done, so the figure is what the
stage adds to end of DATA: max(virus scan, spam scan)); p50/p99 in ms. Throughput: ``--concurrency``
scans in flight at once for ``--seconds``.

    .venv/bin/python bench/scan.py                 # both sizes, default counts
    .venv/bin/python bench/scan.py --sizes 20k --count 500 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inbound.auth.results import DkimResult, DmarcResult, SpfResult
from inbound.scan.engines import spam_engine_from_url, virus_engine_from_url  # noqa: E402
from inbound.scan.scanner import MessageScanner  # noqa: E402
from inbound.types import AuthResults, SmtpEnvelope  # noqa: E402

WORDS = ("invoice meeting project schedule update customer order shipping account review please "
         "thanks regards tomorrow report attached details question support request team quarter").split()


def make_message(size: int, seed: int) -> bytes:
    """A multipart/mixed message of about ``size`` bytes: a text part of ~16 KB and, for larger
    sizes, a base64 attachment making up the rest."""
    rnd = random.Random(seed)
    text_len = min(size, 16 * 1024)
    words, n = [], 0
    while n < text_len:
        w = rnd.choice(WORDS)
        words.append(w)
        n += len(w) + 1
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    text = "\r\n".join(lines)
    parts = [f"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"]
    rest = size - len(text) - 600
    if rest > 1024:
        blob = os.urandom(rest * 3 // 4)
        b64 = base64.encodebytes(blob).decode().replace("\n", "\r\n")
        parts.append(f"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
                     f"filename=\"data{seed}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}")
    head = (f"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: quarterly report {seed}\r\n"
            f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench-{seed}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n")
    return (head + "".join(parts) + "--b1--\r\n").encode()


CLIENT_IP = "203.0.113.5"  # a public (documentation) address: rspamd runs its RBL and host-name checks


def envelope(i: int) -> SmtpEnvelope:
    return SmtpEnvelope(mail_from="alice@example.org", rcpt_to=("bob@example.com",), client_ip=CLIENT_IP,
                        helo="mail.example.org", tls=True, received_at=datetime.now(timezone.utc),
                        session_id=f"bench{i}")


AUTH = AuthResults(spf=SpfResult("pass", "example.org"), dkim=(DkimResult("pass", "example.org", "s1"),),
                   dmarc=DmarcResult("pass", "example.org", "none"))


async def scan_once(scanner: MessageScanner, i: int, raw: bytes) -> float:
    auth = asyncio.get_running_loop().create_future()
    auth.set_result(AUTH)
    start = time.perf_counter()
    result = await scanner(envelope(i), raw, auth, [])
    elapsed = time.perf_counter() - start
    if result.virus_check.verdict != "clean" or result.spam_check.verdict == "unscanned":
        raise RuntimeError(f"unexpected verdicts {result.spam} {result.virus}")
    return elapsed


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def bench_size(scanner: MessageScanner, size: int, count: int, concurrency: int, seconds: float) -> dict:
    messages = [make_message(size, i) for i in range(16)]
    for i in range(3):  # warm up connections and caches
        await scan_once(scanner, i, messages[i % 16])
    latencies = [await scan_once(scanner, i, messages[i % 16]) for i in range(count)]

    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < deadline:
            await scan_once(scanner, i, messages[i % 16])
            done += 1
            i += concurrency

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - start
    return {"size": len(messages[0]), "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": pct(latencies, 99) * 1000, "mean_ms": statistics.fmean(latencies) * 1000,
            "msgs_per_s": done / wall, "count": count, "concurrency": concurrency}


def parse_size(text: str) -> int:
    text = text.lower()
    factor = {"k": 1024, "m": 1024 * 1024}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


async def main_async(args, spam_url: str, virus_url: str) -> None:
    scanner = MessageScanner(spam=spam_engine_from_url(spam_url), virus=virus_engine_from_url(virus_url),
                             hostname="bench.local")
    try:
        print(f"scanners: {scanner.describe()}  cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}"
              f"  client ip: {CLIENT_IP}")
        print(f"{'size':>10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'msg/s':>8}  (latency: {args.count} sequential;"
              f" msg/s: {args.concurrency} concurrent for {args.seconds:g}s)")
        for size in args.sizes:
            count = args.count if size < 1024 * 1024 else max(20, args.count // 5)
            r = await bench_size(scanner, size, count, args.concurrency, args.seconds)
            print(f"{r['size']:>10} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['mean_ms']:>8.1f} {r['msgs_per_s']:>8.1f}")
    finally:
        await scanner.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spam-url", help="rspamd://… or spamd://… (default: start a local rspamd)")
    parser.add_argument("--virus-url", help="clamd://… (default: start a local clamd)")
    parser.add_argument("--sizes", default="20k,2m", help="message sizes, comma-separated (default 20k,2m)")
    parser.add_argument("--count", type=int, default=300, help="sequential scans per size for latency")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length per size")
    parser.add_argument("--client-ip", default=CLIENT_IP,
                        help="the SMTP client address given to rspamd (127.0.0.1 skips its network checks)")
    args = parser.parse_args()
    globals()["CLIENT_IP"] = args.client_ip
    args.sizes = [parse_size(s) for s in args.sizes.split(",")]
    daemons = []
    try:
        spam_url, virus_url = args.spam_url, args.virus_url
        if not spam_url:
            from tests.support.rspamd import RspamdProcess

            daemons.append(RspamdProcess())
            daemons[-1].start()
            spam_url = daemons[-1].url.replace("timeout=5", "timeout=30")
        if not virus_url:
            from tests.support.clamd import ClamdProcess

            daemons.append(ClamdProcess(stream_max="25M"))
            daemons[-1].start()
            virus_url = daemons[-1].url.replace("timeout=5", "timeout=30")
        asyncio.run(main_async(args, spam_url, virus_url))
    finally:
        for d in daemons:
            d.close()


if __name__ == "__main__":
    main()
