"""A minimal real DNS server (dnslib) answering MX queries from a dict, on a free loopback port.

Used by the IMAP tests to verify a domain through configuration (``mailkite domain verify``).
A fuller zone server is being written on the issue-3 branch (``tests/support/dns_server.py``); once
both are merged this one can go.
"""

from __future__ import annotations

from dnslib import MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.servers import free_port


class _Resolver(BaseResolver):
    def __init__(self, mx: dict[str, str]) -> None:
        self.mx = mx

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        target = self.mx.get(qname)
        if request.q.qtype == QTYPE.MX and target:
            reply.add_answer(RR(request.q.qname, QTYPE.MX, rdata=MX(target + ".", 10), ttl=60))
        elif target is None:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class MxDnsServer:
    """``MxDnsServer({"example.test": "mx.mailkite.test"})``; ``nameserver`` is ``127.0.0.1:PORT``."""

    def __init__(self, mx: dict[str, str]) -> None:
        self.mx = mx
        self.port = free_port()
        self._server = DNSServer(_Resolver(mx), port=self.port, address="127.0.0.1",
                                 logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"))

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "MxDnsServer":
        self._server.start_thread()
        return self

    def stop(self) -> None:
        self._server.stop()
