"""The one DNS interface every check uses (dnspython, asyncio).

- Nameservers come from configuration (``MAILKITE_DNS_NAMESERVERS``, ``host:port`` list) or the
  system's ``/etc/resolv.conf``.
- Every query has a deadline (``timeout`` seconds, all retries included).
- Answers are cached for their TTL; NXDOMAIN and NODATA are cached for the SOA minimum (RFC 2308
  §5), at most :data:`NEGATIVE_TTL_MAX` seconds.

Results: :class:`DnsAnswer` (``records`` empty with ``nxdomain`` or ``nodata`` set for a negative
answer). Errors: :class:`DnsTimeout` (deadline passed: callers report ``temperror``),
:class:`DnsFailure` (SERVFAIL, refused, malformed: also ``temperror``); both derive from
:class:`DnsError`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

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
    """Async resolver with a TTL cache. ``nameservers``: ``(host, port)`` pairs, empty for the system's."""

    def __init__(self, nameservers: list[tuple[str, int]] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
                 cache_size: int = 10_000) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in nameservers]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(timeout, 2.0)
        self.timeout = timeout
        self._cache: OrderedDict[tuple[str, str], tuple[float, DnsAnswer]] = OrderedDict()
        self._cache_size = cache_size

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look up ``name``/``rdtype`` (``"TXT"``, ``"MX"``, ``"A"``…). Raises :class:`DnsError`."""
        key = (name.lower().rstrip("."), rdtype.upper())
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        answer = await self._lookup(key[0], key[1])
        self._cache[key] = (now + answer.ttl, answer)
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
