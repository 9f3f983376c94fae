"""Benchmark: the authentication stage (SPF + DKIM + ARC + DMARC) with a warm DNS cache.

Runs :class:`inbound.auth.checker.Authenticator` — exactly what the MX runs at end of DATA — over a
mix of ~20 KB messages (unsigned, RSA-2048-signed, ed25519-signed, RSA+ARC-sealed), with its
resolver pointed at a local dnslib server (tests/support/dns_server.py). After one warm-up pass the
cache answers everything, so the figures are the CPU cost of the checks plus the thread hand-offs.

Prints: verdicts per second (sequential, and N concurrent like simultaneous SMTP sessions) and the
latency added per message (p50/p99) overall and per kind.

    .venv/bin/python bench/auth.py [--messages 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dkim  # noqa: E402

from inbound.auth.checker import AuthConfig, Authenticator  # noqa: E402
from inbound.dns import Resolver  # noqa: E402
from tests.support.auth_run import envelope  # noqa: E402
from tests.support.dkim_signers import DkimKey  # noqa: E402
from tests.support.dns_server import DnsTestServer, Zone  # noqa: E402


def _body(size: int) -> bytes:
    line = b"The quick brown fox jumps over the lazy dog, again and again, for the benchmark.\r\n"
    return line * (size // len(line))


def _messages(size: int) -> tuple[Zone, dict[str, bytes]]:
    rsa = DkimKey.generate("rsa", 2048, domain="bench.test", selector="rsa")
    ed = DkimKey.generate("ed25519", domain="bench.test", selector="ed")
    sealer = DkimKey.generate("rsa", 2048, domain="list.test", selector="arc")
    zone = Zone()
    for key in (rsa, ed, sealer):
        zone.add(key.record_name, "TXT", key.txt_record)
    zone.add("bench.test", "TXT", "v=spf1 ip4:127.0.0.0/8 include:_spf.bench.test -all")
    zone.add("_spf.bench.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.add("_dmarc.bench.test", "TXT", "v=DMARC1; p=reject; rua=mailto:d@bench.test")
    base = (b"From: Bench <bench@bench.test>\r\nTo: inbox@mailkite.test\r\nSubject: benchmark\r\n"
            b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <b@bench.test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n") + _body(size)
    signed = rsa.sign_dkimpy(base)
    ar = b"Authentication-Results: list.test; dkim=pass header.d=bench.test\r\n"
    arc = b"".join(dkim.arc_sign(ar + signed, b"arc", b"list.test", sealer.dkimpy_private, b"list.test")) + ar + signed
    return zone, {"unsigned": base, "rsa2048": signed, "ed25519": ed.sign_dkimpy(base), "rsa+arc": arc}


async def _run(nameserver: str, messages: dict[str, bytes], count: int, concurrency: int) -> None:
    host, _, port = nameserver.rpartition(":")
    auth = Authenticator(Resolver([(host, int(port))]), AuthConfig(authserv_id="mx.bench.test"))
    env = envelope("bench@bench.test", "127.0.0.1", "client.bench.test")
    kinds = list(messages)
    for kind in kinds:  # warm the cache and check the verdicts are the expected ones
        result = await auth(env, messages[kind])
        assert result.dmarc.result == "pass" and result.spf.result == "pass", (kind, result)
        assert all(d.result == "pass" for d in result.dkim), (kind, result.dkim)
    latencies: dict[str, list[float]] = {k: [] for k in kinds}

    async def one(i: int) -> None:
        kind = kinds[i % len(kinds)]
        start = time.perf_counter()
        await auth(env, messages[kind])
        latencies[kind].append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    for i in range(count):
        await one(i)
    sequential = count / (time.perf_counter() - start)
    sequential_latencies = {k: list(v) for k, v in latencies.items()}

    for v in latencies.values():
        v.clear()
    sem = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> None:
        async with sem:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(count)))
    concurrent = count / (time.perf_counter() - start)
    auth.close()

    size = len(messages["unsigned"])
    print(f"auth stage, warm DNS cache, {count} messages of ~{size // 1024} KB, mix {'/'.join(kinds)}")
    print(f"  sequential: {sequential:8.0f} verdicts/s")
    print(f"  {concurrency:2d} concurrent: {concurrent:6.0f} verdicts/s")
    print("  added latency per message, sequential (ms):")
    everything = [x for v in sequential_latencies.values() for x in v]
    for kind, values in [("all", everything)] + list(sequential_latencies.items()):
        print(f"    {kind:10s} p50 {_pct(values, 50):6.2f}  p99 {_pct(values, 99):6.2f}")
    conc = [x for v in latencies.values() for x in v]
    print(f"  added latency per message, {concurrency} concurrent (ms): p50 {_pct(conc, 50):.2f}  "
          f"p99 {_pct(conc, 99):.2f}")


def _pct(values: list[float], p: int) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size", type=int, default=20 * 1024, help="body bytes per message")
    args = parser.parse_args()
    zone, messages = _messages(args.size)
    with DnsTestServer(zone) as dns:
        asyncio.run(_run(dns.nameserver, messages, args.messages, args.concurrency))


if __name__ == "__main__":
    main()
