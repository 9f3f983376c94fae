"""``authenticate(envelope, raw) -> AuthResults``: SPF, DKIM, ARC and DMARC for one transaction.

The three lookups run concurrently, each under its own deadline, so the time added to an SMTP
session is bounded by the longest deadline even when DNS is slow (a check that runs out of time is
``temperror``, never a hung session):

- SPF (pyspf) in a worker thread, its DNS through a :class:`BlockingLookup` on the event loop;
- DKIM and ARC (dkimpy) in a worker thread: keys prefetched concurrently, then hashing and
  signature checks (the CPU part) off the event loop;
- DMARC policy discovery on the event loop (async resolver);
then the pure :func:`inbound.auth.dmarc.evaluate` and the RFC 8601 header.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from inbound.auth import arc as arc_check
from inbound.auth import dkim as dkim_check
from inbound.auth import dmarc as dmarc_check
from inbound.auth.results import ArcResult, DkimResult, DmarcLookup, DmarcResult, SpfResult
from inbound.auth.results_header import build_header
from inbound.auth.spf import check_spf
from inbound.dns import BlockingLookup, Resolver
from inbound.types import AuthResults, SmtpEnvelope

log = logging.getLogger("mailkite.auth")


@dataclass(frozen=True)
class AuthConfig:
    """``authserv_id``: our name in ``Authentication-Results`` (``MAILKITE_HOSTNAME``). Deadlines in
    seconds, per check, counted from the start of :meth:`Authenticator.__call__`. ``threads``: worker
    threads for the blocking checks."""

    authserv_id: str
    spf_timeout_s: float = 8.0
    dkim_timeout_s: float = 6.0
    dmarc_timeout_s: float = 6.0
    threads: int = 4


class Authenticator:
    """The pipeline's ``authenticate`` hook. One per MX process; call :meth:`close` at shutdown.

    ``resolver``: the process's one :class:`Resolver` (its cache is shared by every check).
    """

    def __init__(self, resolver: Resolver, config: AuthConfig) -> None:
        self.resolver = resolver
        self.config = config
        self._threads = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="mk-auth")

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, envelope: SmtpEnvelope, raw: bytes) -> AuthResults:
        """Authenticate one message. Never raises: a check that fails inside reports ``temperror``."""
        start = time.monotonic()
        froms = dmarc_check.from_domains(raw)
        spf, (dkim, arc), lookups = await asyncio.gather(
            self._spf(envelope, start), self._signatures(raw, start), self._policies(froms, start))
        sample = random.random()
        dmarc = dmarc_check.strictest([dmarc_check.evaluate(lk, spf, dkim, sample=sample) for lk in lookups])
        if dmarc is None:
            dmarc = DmarcResult("none", reason="no RFC5322.From domain")
        header = build_header(self.config.authserv_id, spf, dkim, dmarc, arc)
        return AuthResults(spf=spf, dkim=dkim, dmarc=dmarc, arc=arc, header=header,
                           authserv_id=self.config.authserv_id)

    async def _spf(self, envelope: SmtpEnvelope, start: float) -> SpfResult:
        deadline = start + self.config.spf_timeout_s
        loop = asyncio.get_running_loop()
        lookup = BlockingLookup(self.resolver, loop, deadline)
        job = loop.run_in_executor(self._threads, lambda: check_spf(
            lookup, client_ip=envelope.client_ip, mail_from=envelope.mail_from, helo=envelope.helo))
        domain = (envelope.mail_from.rpartition("@")[2] or envelope.helo or "").lower() or None
        identity = "mailfrom" if envelope.mail_from else "helo"
        try:
            return await asyncio.wait_for(job, _left(deadline))
        except asyncio.TimeoutError:
            return SpfResult("temperror", domain, identity, None,
                             f"SPF check did not finish within {self.config.spf_timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - a library bug must not turn into a 451 loop
            log.exception("auth.spf_failed")
            return SpfResult("temperror", domain, identity, None, f"SPF check failed: {type(exc).__name__}")

    async def _signatures(self, raw: bytes, start: float) -> tuple[tuple[DkimResult, ...], ArcResult]:
        fields = dkim_check.signature_fields(raw)
        if not fields:
            return (), ArcResult()
        deadline = start + self.config.dkim_timeout_s
        loop = asyncio.get_running_loop()
        lookup = BlockingLookup(self.resolver, loop, deadline)
        job = loop.run_in_executor(self._threads, _verify_signatures, raw, lookup)
        try:
            return await asyncio.wait_for(job, _left(deadline))
        except asyncio.TimeoutError:
            reason = f"verification did not finish within {self.config.dkim_timeout_s:g}s"
            dkim = (DkimResult("temperror", reason=reason),) if "dkim-signature" in fields else ()
            return dkim, ArcResult("temperror" if "arc-seal" in fields else "none", reason=reason)
        except Exception as exc:  # noqa: BLE001 - a library bug must not turn into a 451 loop
            log.exception("auth.dkim_failed")
            reason = f"signature check failed: {type(exc).__name__}"
            dkim = (DkimResult("temperror", reason=reason),) if "dkim-signature" in fields else ()
            return dkim, ArcResult("temperror" if "arc-seal" in fields else "none", reason=reason)

    async def _policies(self, froms: list[str], start: float) -> list[DmarcLookup]:
        deadline = start + self.config.dmarc_timeout_s

        async def one(domain: str) -> DmarcLookup:
            try:
                return await asyncio.wait_for(dmarc_check.lookup_policy(self.resolver, domain), _left(deadline))
            except asyncio.TimeoutError:
                return DmarcLookup("temperror", domain, dmarc_check.organizational_domain(domain),
                                   reason=f"policy lookup did not finish within {self.config.dmarc_timeout_s:g}s")
            except Exception as exc:  # noqa: BLE001 - a library bug must not turn into a 451 loop
                log.exception("auth.dmarc_failed")
                return DmarcLookup("temperror", domain, dmarc_check.organizational_domain(domain),
                                   reason=f"policy lookup failed: {type(exc).__name__}")

        return list(await asyncio.gather(*(one(d) for d in froms)))


def _verify_signatures(raw: bytes, lookup: BlockingLookup) -> tuple[tuple[DkimResult, ...], ArcResult]:
    """Worker thread: DKIM signatures and the ARC chain of one message (keys prefetched together)."""
    message = dkim_check.parse_message(raw)
    if message is None:
        return (DkimResult("permerror", reason="message headers cannot be parsed"),), ArcResult()
    lookup.prefetch((name, "TXT") for name in dkim_check.key_names(message))
    dkim = dkim_check.verify_dkim(message, lookup)
    has_arc = any(name.lower() == b"arc-seal" for name, _ in message.headers)
    arc = arc_check.verify_arc(raw, lookup) if has_arc else ArcResult()
    return dkim, arc


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
