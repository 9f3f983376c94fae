"""The MX listener: aiosmtpd with our RCPT rules, limits, enhanced status codes and the ingest pipeline.

Behaviour (RFC 5321 unless noted):
- EHLO advertises SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), PIPELINING (RFC 2920),
  ENHANCEDSTATUSCODES (RFC 2034) and STARTTLS (RFC 3207) when a certificate is configured; no AUTH.
- RCPT TO: any address on a receiving domain is accepted (catch-all); others get ``550 5.7.1``
  (relaying denied); more than ``max_recipients`` gets ``452 4.5.3`` (RFC 5321 §4.5.3.1.8).
- DATA: only ``<CRLF>.<CRLF>`` ends it (``inbound/smtp_data.py``; a bare LF never ends DATA, so
  ``\\n.\\r\\n`` and ``\\r\\n.\\n`` cannot smuggle a second message); more than SIZE bytes gets
  ``552 5.3.4``; lines longer than RFC 5321's 1000 octets are accepted, as Postfix does.
- A NUL character in HELO/EHLO (``501 5.5.2``) or in a MAIL/RCPT path (``553 5.1.3``) is a
  syntax error: neither a domain nor a path holds one (§4.1.2).
- End of DATA: the pipeline's reply (250 only once durable; 451/550/554 otherwise).
Every reply after the greeting carries an RFC 3463 enhanced status code.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import uuid
from datetime import timezone

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from inbound import metrics
from inbound.pipeline import IngestPipeline
from inbound.recipients import DomainDirectory, normalize_recipient, split_address
from inbound.smtp_data import read_data_section
from inbound.types import SmtpEnvelope
from store.messages import Recipient
from store.models import utcnow

log = logging.getLogger("mailkite.smtp")

_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(\s|$)")
# RFC 3463 codes for aiosmtpd's own replies, by basic reply code.
_ENHANCED_FOR = {
    "221": "2.0.0", "250": "2.0.0", "251": "2.1.5", "252": "2.5.0", "421": "4.3.0", "451": "4.3.0",
    "452": "4.3.1", "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "535": "5.7.8", "550": "5.0.0", "552": "5.3.4", "553": "5.1.3", "554": "5.7.0",
    "555": "5.5.4",
}
# RFC 5321 §4.1.1.1 / §4.1.2: a domain or address literal holds no NUL (US-ASCII graphic characters).
_NUL_REPLY = "501 5.5.2 Syntax error: NUL character in the command"
_REWRITE = {
    "552 Error: Too much mail data": "552 5.3.4 Message too big for system",
    "552 Error: message size exceeds fixed maximum message size": "552 5.3.4 Message size exceeds fixed maximum message size",
}


# RFC 5321 §4.1.2 Path in its everyday form, ``<Dot-string@Domain>`` with ASCII atoms (atext, RFC
# 5322 §3.2.3), then the rest of the line (the ESMTP parameters). Everything else (quoted local
# parts, source routes, address literals, UTF-8, a missing bracket) goes to aiosmtpd's parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>\s*(.*)\Z", re.S)


class MXProtocol(SMTP):
    """aiosmtpd's SMTP with RFC 3463 enhanced codes on every reply, a chunked DATA reader and a
    fast reading of plain MAIL FROM / RCPT TO paths."""

    # The StreamReader's limit: the reader pauses the socket once it holds twice this much, so a
    # larger one means fewer pause/resume cycles while DATA streams in (command lines are still
    # held to command_size_limit).
    line_length_limit = 64 * 1024

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_ehlo = False

    async def smtp_AUTH(self, arg: str):  # noqa: N802 - aiosmtpd naming
        """Not implemented (``502``): an MX receives mail for its domains and offers no AUTH (RFC 4954
        §3), neither in EHLO nor, with no ``@syntax``, in HELP. aiosmtpd's own AUTH ran its
        mechanisms without an authenticator and answered ``535`` to every password, which invited
        guessing."""
        await self.push("502 5.5.1 AUTH not available: this server only receives mail for its domains")

    async def smtp_HELO(self, hostname: str):  # noqa: N802 - aiosmtpd naming
        if hostname and "\x00" in hostname:
            await self.push(_NUL_REPLY)
            return
        await super().smtp_HELO(hostname)

    async def smtp_EHLO(self, hostname: str):  # noqa: N802 - aiosmtpd naming
        if hostname and "\x00" in hostname:
            await self.push(_NUL_REPLY)
            return
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd naming
        """aiosmtpd's DATA with the chunked reader of :mod:`inbound.smtp_data` (same checks and replies)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            section = await read_data_section(self._reader, self.data_size_limit)
        except asyncio.CancelledError:
            log.info("smtp.data_interrupted", extra={"kv": {"session": getattr(self.session, "mk_id", "")}})
            self._writer.close()
            raise
        if section.closed:
            self._writer.close()
            return
        if section.too_big:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = section.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's ``(address, rest)`` of a MAIL/RCPT argument (``(None, None)``: unreadable); the
        common ``<local@domain>`` form is read with one regular expression instead of the stdlib's
        RFC 5322 header parser (which cost more per message than the rest of the command handling),
        and a path that makes that parser raise is unreadable rather than a "500 Error: (IndexError)"."""
        if arg and "\x00" in arg:
            return None, None  # RFC 5321 §4.1.2: no NUL in a path (nor a text column would take it)
        m = _SIMPLE_PATH.match(arg) if arg else None
        if m is None:
            try:
                return super()._getaddr(arg)
            except Exception:  # noqa: BLE001 - the stdlib parser trips on some hostile paths ("<": IndexError)
                return None, None  # a syntax error for the client, not "500 Error: (IndexError) …"
        address, rest = m.group(1), m.group(2)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    async def push(self, status):
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        text = _REWRITE.get(text, text)
        code = text[:3]
        # Greeting, EHLO lines and 354 carry no enhanced code (RFC 2034 §3).
        if not self._in_ehlo and code not in ("220", "354") and not _HAS_ENHANCED.match(text):
            enhanced = _ENHANCED_FOR.get(code)
            if enhanced and len(text) >= 4 and text[3] in " -":
                text = f"{text[:4]}{enhanced} {text[4:]}".rstrip()
        await super().push(text)


class MXHandler:
    """aiosmtpd handler hooks: EHLO extensions, RCPT acceptance, end of DATA."""

    def __init__(self, *, pipeline: IngestPipeline, directory: DomainDirectory, max_recipients: int) -> None:
        self.pipeline = pipeline
        self.directory = directory
        self.max_recipients = max_recipients
        self.in_flight: set[asyncio.Task] = set()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        # aiosmtpd hands over its lines ending with "250 HELP"; an MX offers no AUTH.
        lines = [r for r in responses if not r.startswith("250-AUTH") and r != "250 HELP"]
        return lines + ["250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250 HELP"]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          mail_options: list[str]) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.mk_domains = {}  # rcpt address -> DomainInfo, for this transaction
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            metrics.RECIPIENTS_REFUSED.labels("too_many_recipients").inc()
            return f"452 4.5.3 Too many recipients (at most {self.max_recipients} per message)"
        parts = split_address(address)
        if parts is None:
            metrics.RECIPIENTS_REFUSED.labels("bad_address").inc()
            return "501 5.1.3 Bad recipient address syntax"
        info = await self.directory.for_address(address)
        if info is None:
            metrics.RECIPIENTS_REFUSED.labels("relay_denied").inc()
            return f"550 5.7.1 Relaying denied: this server does not accept mail for {parts[1]}"
        rcpt = normalize_recipient(address)
        if rcpt not in envelope.rcpt_tos:
            envelope.rcpt_tos.append(rcpt)
            envelope.rcpt_options.extend(rcpt_options)
            if not hasattr(envelope, "mk_domains"):
                envelope.mk_domains = {}
            envelope.mk_domains[rcpt] = info
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw: bytes = envelope.original_content or b""
        mail_from = "" if envelope.mail_from in ("<>", None) else envelope.mail_from
        domains = getattr(envelope, "mk_domains", {})
        smtp_env = SmtpEnvelope(
            mail_from=mail_from, rcpt_to=tuple(envelope.rcpt_tos), client_ip=_peer_ip(session.peer),
            helo=session.host_name, tls=session.ssl is not None, received_at=utcnow().astimezone(timezone.utc),
            smtputf8=bool(envelope.smtp_utf8), session_id=getattr(session, "mk_id", ""),
        )
        recipients = _group_recipients(envelope.rcpt_tos, domains)
        # Shielded: a client that hangs up while we store must not leave the store half done.
        task = asyncio.ensure_future(self.pipeline.run(smtp_env, raw, recipients))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        outcome = await asyncio.shield(task)
        log.info("smtp.transaction", extra={"kv": {
            "session": smtp_env.session_id, "client_ip": smtp_env.client_ip, "helo": smtp_env.helo,
            "tls": smtp_env.tls, "mail_from": mail_from, "rcpt_count": len(envelope.rcpt_tos), "size": len(raw),
            "outcome": outcome.outcome, "reason": outcome.reason, "reply": outcome.reply[:3],
            "message_ids": outcome.message_ids, "timings_ms": outcome.timings_ms,
            "parse_errors": outcome.parse_errors,
            "spf": outcome.auth.spf.result if outcome.auth else None,
            "dmarc": outcome.auth.dmarc.result if outcome.auth else None,
            "spam": outcome.scan.spam.get("verdict") if outcome.scan else None,
            "virus": outcome.scan.virus.get("verdict") if outcome.scan else None,
        }})
        return outcome.reply


def _peer_ip(peer) -> str | None:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


def _group_recipients(rcpt_tos: list[str], domains: dict) -> list[Recipient]:
    """One :class:`Recipient` per inbox; each sees the RCPT TO addresses of its own domain only
    (other domains may belong to other accounts: a Bcc must not leak)."""
    out = []
    for rcpt in rcpt_tos:
        info = domains[rcpt]
        same_domain = tuple(r for r in rcpt_tos if domains[r].id == info.id)
        out.append(Recipient(inbox=rcpt, domain=info, rcpt_to=same_domain))
    return out


class _SessionIdSMTP(MXProtocol):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.session is not None:
            self.session.mk_id = uuid.uuid4().hex[:12]


async def start_mx_server(handler: MXHandler, *, host: str, port: int, hostname: str, max_message_bytes: int,
                          tls_context: ssl.SSLContext | None, timeout_s: float = 300.0) -> asyncio.Server:
    """Listen on ``host:port`` (port 0 picks a free one; see ``server.sockets``)."""
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return _SessionIdSMTP(handler, data_size_limit=max_message_bytes, enable_SMTPUTF8=True, decode_data=False,
                              hostname=hostname, ident="mailkite ESMTP", tls_context=tls_context,
                              require_starttls=False, timeout=timeout_s, auth_require_tls=True, loop=loop)

    return await loop.create_server(factory, host=host, port=port, reuse_address=True)
