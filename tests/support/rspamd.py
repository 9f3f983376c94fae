"""A real rspamd for tests: Debian's ``rspamd`` with its stock rules (``/etc/rspamd``), one normal
worker on a free loopback port, state in a private temp dir, the local overrides shipped in
``tests/scanners/rspamd/`` (which enable ``http_headers``), and no Redis.

No internet here, so rspamd's resolver is pointed at :class:`NxDomainServer`, a DNS server on a
loopback port answering NXDOMAIN to everything (what a resolver says for names that do not exist):
RBL, DNSWL and host-name lookups fail at once instead of waiting for time-outs.

The GTUBE test string is never written in a source file: :func:`gtube` assembles it at run time.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from dnslib import RCODE
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.scanproc import SCANNERS, ScannerDaemon
from tests.support.servers import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def gtube() -> str:
    """SpamAssassin's Generic Test for Unsolicited Bulk Email string, assembled at run time."""
    return "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NxResolver(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.rcode = RCODE.NXDOMAIN
        return reply


def serve_nxdomain(port: int) -> None:
    """Answer NXDOMAIN on ``127.0.0.1:port`` (UDP and TCP) until killed."""
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", logf=lambda _: None)
    for tcp in (False, True):
        DNSServer(_NxResolver(), port=port, address="127.0.0.1", tcp=tcp, logger=quiet).start_thread()
    while True:
        time.sleep(3600)


class NxDomainServer:
    """A dnslib DNS server on ``127.0.0.1:port`` answering NXDOMAIN to every query, in a process of
    its own (as a real resolver would be: it must not compete for the GIL with the code measured)."""

    def __init__(self) -> None:
        self.port = _free_udp_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.rspamd", "--nxdomain", str(self.port)],
                                         cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for_port(self.port)  # the TCP listener: the UDP one started just before it

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class RspamdProcess(ScannerDaemon):
    """rspamd's normal worker on ``127.0.0.1:port`` (``url`` is the ``MAILKITE_SPAM_URL``)."""

    user = "_rspamd"
    start_timeout_s = 120.0  # the first start compiles the stock rules' regexps (hyperscan)

    def __init__(self) -> None:
        super().__init__(free_port())
        self.dns = NxDomainServer()

    @property
    def url(self) -> str:
        return f"rspamd://127.0.0.1:{self.port}?timeout=5"

    def prepare(self) -> None:
        source = SCANNERS / "rspamd"
        for template in source.rglob("*"):
            if template.is_file():
                self.render(template, self.state / template.relative_to(source), PORT=str(self.port),
                            DNS_PORT=str(self.dns.port), STATE=str(self.state))

    def command(self) -> list[str]:
        s = self.state
        return [shutil.which("rspamd") or "/usr/bin/rspamd", "-f", "-c", str(s / "rspamd.conf"),
                f"--var=LOCAL_CONFDIR={s}", f"--var=DBDIR={s}", f"--var=RUNDIR={s}", f"--var=LOGDIR={s}"]

    def start(self) -> None:
        self.dns.start()
        super().start()
        # Until its hyperscan database is compiled and loaded, rspamd scans with slow PCRE regexps:
        # wait for it, so scans (and benchmark figures) are what production sees.
        deadline = time.monotonic() + self.start_timeout_s
        log = self.state / "rspamd.log"
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if any("(normal)" in line and "hyperscan database of" in line for line in text.splitlines()):
                return
            time.sleep(0.2)

    def close(self) -> None:
        super().close()
        self.dns.stop()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--nxdomain":
        serve_nxdomain(int(sys.argv[2]))
