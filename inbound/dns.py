"""The one DNS interface every check uses (dnspython, asyncio).

- Nameservers come from configuration (``MAILKITE_DNS_NAMESERVERS``, ``host:port`` list) or the
  system's ``/etc/resolv.conf``.
- Every query has a deadline (``timeout`` seconds, all retries included).
- Answers are cached for their TTL; NXDOMAIN and NODATA are cached for the SOA minimum (RFC 2308
  §5), at most :data:`NEGATIVE_TTL_MAX` seconds.

- Concurrent lookups of the same name and type share one query.

Results: :class:`DnsAnswer` (``records`` empty with ``nxdomain`` or ``nodata`` set for a negative
answer). Errors: :class:`DnsTimeout` (deadline passed: callers report ``temperror``),
:class:`DnsFailure` (SERVFAIL, refused, malformed: also ``temperror``); both derive from
:class:`DnsError`.

Libraries with synchronous DNS callbacks (pyspf, dkimpy) run in worker threads and look names up
through :class:`BlockingLookup`, a per-check facade over the same :class:`Resolver` (same cache,
same nameservers) with the check's own deadline. It never runs DNS itself: each lookup is handed to
the event loop that owns the resolver, so the SMTP loop is never blocked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

NEGATIVE_TTL_MAX = 300
DEFAULT_TIMEOUT_S = 3.0


class DnsError(Exception):
    """A DNS lookup could not be completed."""


class DnsTimeout(DnsError):
    """No answer within the deadline."""


class DnsFailure(DnsError):
    """SERVFAIL, REFUSED or an unusable answer."""


class DnsNotConfigured(DnsError):
    """No nameservers: none configured, and the system's resolver configuration is missing or
    names none (a container without ``/etc/resolv.conf``)."""


@dataclass(frozen=True)
class DnsAnswer:
    """One RRset as text. TXT records have their character-strings joined (RFC 7208 §3.3)."""

    name: str
    rdtype: str
    records: tuple[str, ...]
    ttl: int
    nxdomain: bool = False
    nodata: bool = False


class Resolver:
    """Async resolver with a TTL cache. ``nameservers``: ``(host, port)`` pairs, empty for the
    system's (read from ``system_config``, ``/etc/resolv.conf``). Raises :class:`DnsNotConfigured`
    when that leaves no nameserver."""

    def __init__(self, nameservers: list[tuple[str, int]] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
                 cache_size: int = 10_000, system_config: str = "/etc/resolv.conf") -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in nameservers]
        else:
            try:
                self._resolver = dns.asyncresolver.Resolver(filename=system_config)
            except dns.resolver.NoResolverConfiguration as exc:
                raise DnsNotConfigured(f"no DNS nameservers: {system_config} is missing or names none ({exc}); "
                                       "set MAILKITE_DNS_NAMESERVERS (host:port,...)") from None
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(timeout, 2.0)
        self.timeout = timeout
        self._cache: OrderedDict[tuple[str, str], tuple[float, DnsAnswer]] = OrderedDict()
        self._cache_size = cache_size
        self._in_flight: dict[tuple[str, str], asyncio.Task] = {}

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look up ``name``/``rdtype`` (``"TXT"``, ``"MX"``, ``"A"``…). Raises :class:`DnsError`."""
        key = (name.lower().rstrip("."), rdtype.upper())
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            self._cache.move_to_end(key)
            return hit[1]
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fill(key))
            self._in_flight[key] = task
            task.add_done_callback(lambda t, key=key: self._settled(key, t))
        # Shielded: one caller giving up (its own deadline) must not cancel the others' lookup.
        return await asyncio.shield(task)

    def _settled(self, key: tuple[str, str], task: asyncio.Task) -> None:
        self._in_flight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: a lookup whose callers all gave up must not warn

    def peek(self, name: str, rdtype: str) -> DnsAnswer | None:
        """The cached, unexpired answer or None; never queries. Safe from any thread (reads only)."""
        hit = self._cache.get((name.lower().rstrip("."), rdtype.upper()))
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return None

    async def _fill(self, key: tuple[str, str]) -> DnsAnswer:
        answer = await self._lookup(key[0], key[1])
        self._cache[key] = (time.monotonic() + answer.ttl, answer)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return answer

    async def txt(self, name: str) -> list[str]:
        """The TXT strings of ``name`` (empty for none). Raises :class:`DnsError`."""
        return list((await self.query(name, "TXT")).records)

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """``(preference, exchange)`` pairs sorted by preference, exchange without the trailing dot."""
        answer = await self.query(name, "MX")
        pairs = []
        for rec in answer.records:
            pref, host = rec.split(None, 1)
            pairs.append((int(pref), host.rstrip(".").lower()))
        return sorted(pairs)

    async def _lookup(self, name: str, rdtype: str) -> DnsAnswer:
        try:
            ans = await asyncio.wait_for(
                self._resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False),
                timeout=self.timeout + 0.5,
            )
        except dns.resolver.NXDOMAIN as exc:
            return DnsAnswer(name, rdtype, (), _negative_ttl(exc), nxdomain=True)
        except (dns.exception.Timeout, asyncio.TimeoutError, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTimeout(f"{rdtype} {name}: no answer within {self.timeout:g}s") from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsFailure(f"{rdtype} {name}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise DnsFailure(f"{rdtype} {name}: {exc}") from exc
        if ans.rrset is None:
            ttl = min(NEGATIVE_TTL_MAX, _soa_minimum(ans.response) or 60)
            return DnsAnswer(name, rdtype, (), ttl, nodata=True)
        if dns.rdatatype.from_text(rdtype) == dns.rdatatype.TXT:
            records = tuple(b"".join(r.strings).decode("utf-8", "replace") for r in ans.rrset)
        else:
            records = tuple(r.to_text() for r in ans.rrset)
        return DnsAnswer(name, rdtype, records, int(ans.rrset.ttl))


class BlockingLookup:
    """A synchronous view of a :class:`Resolver` for library callbacks running in worker threads.

    One instance per check: it carries the check's deadline (``deadline``: a ``time.monotonic()``
    instant) and remembers every answer and error it saw, so a name is asked at most once per
    check (a failing server is not waited for twice). Lookups are run by the
    event loop ``loop`` that owns ``resolver``; calling from that loop's own thread raises
    :class:`RuntimeError` (it would deadlock). Raises :class:`DnsTimeout` once the deadline has
    passed, :class:`DnsFailure` for server failures.
    """

    def __init__(self, resolver: Resolver, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self.resolver = resolver
        self.loop = loop
        self.deadline = deadline
        self._seen: dict[tuple[str, str], DnsAnswer | DnsError] = {}

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look up ``name``/``rdtype`` within the deadline. Raises :class:`DnsError`."""
        key = (name.lower().rstrip("."), rdtype.upper())
        seen = self._seen.get(key)
        if seen is None:
            seen = self.resolver.peek(*key) or self._wait([key])[0]
            self._seen[key] = seen
        if isinstance(seen, DnsError):
            raise seen
        return seen

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Look up several ``(name, rdtype)`` pairs concurrently; later :meth:`query` calls for them
        answer from what was fetched (errors included)."""
        wanted = [(n.lower().rstrip("."), t.upper()) for n, t in keys]
        wanted = [k for k in dict.fromkeys(wanted) if k not in self._seen and self.resolver.peek(*k) is None]
        if wanted:
            for key, outcome in zip(wanted, self._wait(wanted)):
                self._seen[key] = outcome

    def _wait(self, keys: list[tuple[str, str]]) -> list[DnsAnswer | DnsError]:
        if _running_loop() is self.loop:
            raise RuntimeError("BlockingLookup used on its own event loop's thread")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return [DnsTimeout(f"{t} {n}: check deadline passed") for n, t in keys]

        async def run() -> list:
            return await asyncio.gather(*(self.resolver.query(n, t) for n, t in keys), return_exceptions=True)

        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(run(), remaining), self.loop)
        try:
            outcomes = future.result(timeout=remaining + 0.5)
        except (concurrent.futures.TimeoutError, asyncio.TimeoutError):
            future.cancel()
            return [DnsTimeout(f"{t} {n}: no answer within the check deadline") for n, t in keys]
        return [o if isinstance(o, (DnsAnswer, DnsError)) else DnsFailure(f"{t} {n}: {o!r}")
                for (n, t), o in zip(keys, outcomes)]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _soa_minimum(response) -> int | None:
    for rrset in getattr(response, "authority", []) or []:
        if rrset.rdtype == dns.rdatatype.SOA:
            return min(int(rrset.ttl), int(rrset[0].minimum))
    return None


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> int:
    try:
        for response in exc.responses().values():
            soa = _soa_minimum(response)
            if soa is not None:
                return min(NEGATIVE_TTL_MAX, soa)
    except Exception:  # noqa: BLE001 - best effort
        pass
    return 60
