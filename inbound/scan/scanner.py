"""The scan stage: sender lists first, then the spam and virus scans concurrently, each under its
own deadline, never blocking the event loop (all I/O is asyncio; nothing CPU-heavy runs here).

Ordering (how rspamd gets our authentication results while the stage still runs alongside
authentication): the pipeline starts authentication and this stage together and hands us the
authentication as a future. The virus scan needs nothing from it and starts at once, in parallel
with SPF/DKIM/DMARC; the spam scan awaits the authentication verdicts first and then passes them
to the spam engine (rspamd's ``SPF``/``DKIM``/``DMARC`` request headers), so the engine neither
repeats those DNS lookups nor scores without them. Wall time ≈ max(virus scan, authentication +
spam scan). Each engine's deadline (``?timeout=`` in its URL) covers its own scan only.

Outcomes never raise: an engine error or deadline becomes an ``unscanned`` verdict with its
``failure`` reason (``unavailable``, ``timeout``, ``protocol_error``, ``too_large``), which
``inbound.policy`` answers with 451 4.7.1 (or 552 5.3.4 for ``too_large``) unless every recipient
domain is ``scan_fail_open``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence

from prometheus_client import Counter, Histogram

from inbound.scan.engines import SpamEngine, VirusEngine
from inbound.scan.errors import ScanError
from inbound.scan.headers import spam_fields, virus_fields
from inbound.scan.lists import match_sender_lists, normalize_senders
from inbound.scan.results import SenderListMatch, SpamCheck, SpamSymbol, VirusCheck
from inbound.types import AuthResults, ScanResults, SmtpEnvelope
from parser.headers import parse_addresses, read_headers
from store.domains import DomainInfo

log = logging.getLogger("mailkite.scan")

HEADER_SCAN_BYTES = 256 * 1024  # the From: field is looked for in this much of the message at most

SCANS = Counter("mailkite_scans_total", "Scans by kind, engine and verdict (failure: why unscanned)",
                ["kind", "engine", "verdict", "failure"])
SCAN_SECONDS = Histogram("mailkite_scan_seconds", "Time per scan, by kind and engine", ["kind", "engine"],
                         buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def header_from(raw: bytes) -> list[str]:
    """The addr-specs of the ``From:`` field(s) (RFC 5322 §3.6.2), from the first
    :data:`HEADER_SCAN_BYTES` of ``raw``."""
    values = [v for name, v in read_headers(raw[:HEADER_SCAN_BYTES]) if name.lower() == "from"]
    return [a.address for a in parse_addresses(values)]


def _listed_spam(match: SenderListMatch) -> SpamCheck:
    """The spam verdict a list gives: ``ham`` for allowed senders, ``spam`` for blocked ones."""
    name = "SENDER_ALLOWLIST" if match.action == "allow" else "SENDER_BLOCKLIST"
    return SpamCheck(verdict="ham" if match.action == "allow" else "spam", score=0.0, required=None,
                     engine=f"sender_{match.action}list", symbols=(SpamSymbol(name, 0.0, (match.entry,)),))


class MessageScanner:
    """The ``scan`` hook of :class:`inbound.pipeline.IngestPipeline`. ``spam`` / ``virus``: the
    configured engines (None: that scan is ``unscanned`` and adds no trace field); ``hostname``
    names us in ``X-Virus-Scanned``."""

    def __init__(self, *, spam: SpamEngine | None = None, virus: VirusEngine | None = None,
                 hostname: str = "localhost") -> None:
        self.spam = spam
        self.virus = virus
        self.hostname = hostname

    def describe(self) -> dict[str, str | None]:
        """Where each engine is (for the startup log line)."""
        return {"spam": self.spam.address.describe() if self.spam else None,
                "virus": self.virus.address.describe() if self.virus else None}

    async def __call__(self, envelope: SmtpEnvelope, raw: bytes, auth: Awaitable[AuthResults],
                       domains: Sequence[DomainInfo]) -> ScanResults:
        """Scan one transaction. ``auth`` is a future of the authentication verdicts (awaited by the
        spam scan only; it may be awaited elsewhere too); ``domains`` the recipient domains.
        Returns :class:`ScanResults`; raises only what awaiting ``auth`` raises."""
        unique = list({d.id: d for d in domains}.values())
        listed = None
        if any(d.policy.sender_allowlist or d.policy.sender_blocklist for d in unique):
            listed = match_sender_lists(unique, normalize_senders([envelope.mail_from, *header_from(raw)]))
        if listed is not None and listed.action == "block":
            spam, virus = _listed_spam(listed), VirusCheck()
        else:
            virus_task = asyncio.ensure_future(self._virus(raw, envelope))
            try:
                if listed is not None:
                    spam = _listed_spam(listed)
                else:
                    spam = await self._spam(envelope, raw, auth)
                virus = await virus_task
            finally:
                virus_task.cancel()
        headers = tuple(spam_fields(spam, self.spam.name if self.spam else None)
                        + virus_fields(virus, self.virus.name if self.virus else None, self.hostname))
        return ScanResults(spam_check=spam, virus_check=virus, sender_list=listed, headers=headers)

    async def _spam(self, envelope: SmtpEnvelope, raw: bytes, auth: Awaitable[AuthResults]) -> SpamCheck:
        if self.spam is None:
            return SpamCheck()
        verdicts = await auth
        engine = self.spam
        try:
            with SCAN_SECONDS.labels("spam", engine.name).time():
                async with asyncio.timeout(engine.timeout_s):
                    check = await engine.check(envelope, raw, verdicts)
        except (ScanError, TimeoutError) as exc:
            check = SpamCheck(engine=engine.name, failure=_failure(exc))
            _log_failure("spam", engine.name, exc, envelope)
        SCANS.labels("spam", engine.name, check.verdict, check.failure or "").inc()
        return check

    async def _virus(self, raw: bytes, envelope: SmtpEnvelope) -> VirusCheck:
        if self.virus is None:
            return VirusCheck()
        engine = self.virus
        try:
            with SCAN_SECONDS.labels("virus", engine.name).time():
                async with asyncio.timeout(engine.timeout_s):
                    check = await engine.scan(raw)
        except (ScanError, TimeoutError) as exc:
            check = VirusCheck(engine=engine.name, failure=_failure(exc))
            _log_failure("virus", engine.name, exc, envelope)
        SCANS.labels("virus", engine.name, check.verdict, check.failure or "").inc()
        return check

    async def aclose(self) -> None:
        """Close the engines' pooled connections."""
        for engine in (self.spam, self.virus):
            if engine is not None:
                await engine.aclose()


def _failure(exc: BaseException) -> str:
    return exc.failure if isinstance(exc, ScanError) else "timeout"


def _log_failure(kind: str, engine: str, exc: BaseException, envelope: SmtpEnvelope) -> None:
    log.warning("scan.unscanned", extra={"kv": {
        "kind": kind, "engine": engine, "failure": _failure(exc), "session": envelope.session_id,
        "error": str(exc)[:300] or type(exc).__name__}})
