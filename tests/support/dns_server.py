"""A real DNS server for tests (dnslib), serving a zone held in memory, on a free loopback port.

    zone = Zone()
    zone.add("example.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    zone.add("example.test", "MX", "10 mx.example.test")
    with DnsTestServer(zone) as dns:
        settings MAILKITE_DNS_NAMESERVERS = dns.nameserver     # "127.0.0.1:PORT"

Semantics are those of an authoritative server: a name with records of another type answers
NODATA, a name with neither records nor descendants answers NXDOMAIN (both with an SOA for the
negative TTL), CNAMEs are followed; TXT values longer than 255 octets are split into several
character-strings. ``zone.delay[name] = seconds`` slows a name down, ``zone.servfail`` holds names
answered with SERVFAIL; ``server.queries`` records every question ``(name, type)``. UDP and TCP.
:class:`SilentDns` is a nameserver that never answers (for timeouts).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.servers import free_port


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


@dataclass
class Zone:
    """Records by owner name: ``(type, value, ttl)``. Thread-safe enough for tests (GIL)."""

    records: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    negative_ttl: int = 60

    def add(self, name: str, rtype: str, value: str, ttl: int = 300) -> "Zone":
        """Add one record. ``value``: text for TXT, an address for A/AAAA, ``"PREF HOST"`` for MX,
        a host name for CNAME/PTR."""
        self.records.setdefault(_norm(name), []).append((rtype.upper(), value, ttl))
        return self

    def remove(self, name: str, rtype: str | None = None) -> None:
        """Remove the records of ``name`` (of one type, or all)."""
        key = _norm(name)
        kept = [r for r in self.records.get(key, []) if rtype is not None and r[0] != rtype.upper()]
        if kept:
            self.records[key] = kept
        else:
            self.records.pop(key, None)

    def exists(self, name: str) -> bool:
        key = _norm(name)
        return key in self.records or any(k.endswith("." + key) for k in self.records)

    def load_corpus(self, path: Path) -> "Zone":
        """Load a corpus ``NAME.dns.txt`` file (``NAME<TAB>TYPE<TAB>VALUE``; ``NXDOMAIN`` lines and
        empty TXT values add nothing, ``EXISTS`` adds a placeholder A record)."""
        for line in path.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, rtype, value = (line.split("\t") + ["", ""])[:3]
            if rtype == "TXT" and value:
                self.add(name, "TXT", value)
            elif rtype == "EXISTS":
                self.add(name, "A", "192.0.2.1")
        return self


class _ZoneResolver(BaseResolver):
    def __init__(self, server: "DnsTestServer") -> None:
        self.server = server

    def resolve(self, request, handler):
        zone = self.server.zone
        reply = request.reply()
        qname = _norm(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self.server._lock:
            self.server.queries.append((qname, qtype))
        if qname in zone.delay:
            time.sleep(zone.delay[qname])
        if qname in zone.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name = qname
        for _ in range(8):  # follow CNAMEs
            records = zone.records.get(name, [])
            cname = [r for r in records if r[0] == "CNAME"]
            if cname and qtype != "CNAME":
                reply.add_answer(_rr(name, *cname[0]))
                name = _norm(cname[0][1])
                continue
            break
        matching = [r for r in zone.records.get(name, []) if r[0] == qtype]
        for record in matching:
            reply.add_answer(_rr(name, *record))
        if not matching:
            if not zone.exists(name):
                reply.header.rcode = RCODE.NXDOMAIN
            apex = ".".join(name.split(".")[-2:]) or "test"
            reply.add_auth(RR(apex, QTYPE.SOA, ttl=zone.negative_ttl, rdata=SOA(
                f"ns.{apex}", f"hostmaster.{apex}", (1, 3600, 600, 86400, zone.negative_ttl))))
        return reply


def _rr(name: str, rtype: str, value: str, ttl: int) -> RR:
    if rtype == "TXT":
        data = value.encode("utf-8")
        rdata = TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])
    elif rtype == "A":
        rdata = A(value)
    elif rtype == "AAAA":
        rdata = AAAA(value)
    elif rtype == "MX":
        pref, host = value.split(None, 1)
        rdata = MX(DNSLabel(host), int(pref))
    elif rtype == "CNAME":
        rdata = CNAME(DNSLabel(value))
    elif rtype == "PTR":
        rdata = PTR(DNSLabel(value))
    else:
        raise ValueError(f"record type {rtype} not supported by the test server")
    return RR(name, getattr(QTYPE, rtype), ttl=ttl, rdata=rdata)


class DnsTestServer:
    """Serves ``zone`` over UDP and TCP on ``host`` and a free port (``nameserver``: ``host:port``)."""

    def __init__(self, zone: Zone | None = None, host: str = "127.0.0.1") -> None:
        self.zone = zone or Zone()
        self.host = host
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._servers: list[DNSServer] = []
        self.port = 0

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "DnsTestServer":
        resolver = _ZoneResolver(self)
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        for _attempt in range(20):
            port = free_port()
            try:
                udp = DNSServer(resolver, address=self.host, port=port, logger=logger)
            except OSError:
                continue
            tcp = DNSServer(resolver, address=self.host, port=port, tcp=True, logger=logger)
            self._servers = [udp, tcp]
            self.port = port
            break
        else:
            raise RuntimeError("no free port for the test DNS server")
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def asked(self, name: str, rtype: str | None = None) -> int:
        """How many times ``name`` (of ``rtype``, or any type) was asked."""
        key = _norm(name)
        with self._lock:
            return sum(1 for n, t in self.queries if n == key and (rtype is None or t == rtype))

    def __enter__(self) -> "DnsTestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SilentDns:
    """A nameserver address that receives queries and never answers (UDP and TCP), for timeouts."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, 0))
        self.host, self.port = self.udp.getsockname()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.tcp.bind((host, self.port))
            self.tcp.listen(16)
        except OSError:
            self.tcp.close()

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()
