"""SpamAssassin adapter: spamd's ``SYMBOLS`` command over aiospamc (SpamAssassin's spamd protocol,
``spamd/PROTOCOL``), TCP or a Unix socket.

spamd sees only the message, so a ``Received:`` trace field for our hop (RFC 5321 §4.4: client
HELO and IP) is put in front of the copy sent to it, as an MTA would have done; SpamAssassin's
network tests read the relay from there. Verdict: ``spam`` when spamd's ``Spam:`` answer is
``True``; ``score`` and ``required`` from the same answer; ``symbols`` the rule names (spamd's
SYMBOLS answer gives no per-rule scores: ``score`` is None for each).
"""

from __future__ import annotations

from email.utils import format_datetime

import aiospamc
from aiospamc import exceptions as spamc_errors
from aiospamc import responses as spamc_responses
from loguru import logger as _loguru

from inbound.scan.engines import ScannerAddress
from inbound.scan.errors import ScannerUnavailable, ScanProtocolError, ScanTimeout
from inbound.scan.results import SpamCheck, SpamSymbol, bounded_symbols
from inbound.types import AuthResults, SmtpEnvelope

# aiospamc logs every request through loguru to stderr; our logs are JSON lines of our own.
_loguru.disable("aiospamc")

_RETRYABLE = (spamc_responses.UnavailableException, spamc_responses.TemporaryFailureException,
              spamc_responses.OSErrorException, spamc_responses.IOErrorException)


def received_field(envelope: SmtpEnvelope) -> bytes:
    """A ``Received:`` field for our hop (RFC 5321 §4.4), CRLF-terminated."""
    helo = (envelope.helo or "unknown").replace("\r", "").replace("\n", "")
    ip = envelope.client_ip or "unknown"
    proto = "ESMTPS" if envelope.tls else "ESMTP"
    return (f"Received: from {helo} ([{ip}])\r\n\tby mailkite with {proto} id {envelope.session_id or 'none'};"
            f" {format_datetime(envelope.received_at)}\r\n").encode("utf-8", "replace")


class SpamdClient:
    """Implements :class:`~inbound.scan.engines.SpamEngine`; raises :class:`ScannerUnavailable`,
    :class:`ScanTimeout` or :class:`ScanProtocolError`."""

    name = "spamassassin"

    def __init__(self, address: ScannerAddress) -> None:
        self.address = address
        self.timeout_s = address.timeout_s

    async def check(self, envelope: SmtpEnvelope, raw: bytes, auth: AuthResults) -> SpamCheck:
        """Scan ``raw`` with spamd. Returns a ``ham``/``spam`` :class:`SpamCheck`."""
        where = ({"socket_path": self.address.socket_path} if self.address.socket_path
                 else {"host": self.address.host, "port": self.address.port})
        try:
            resp = await aiospamc.symbols(received_field(envelope) + raw,
                                          timeout=aiospamc.Timeout(total=self.timeout_s + 5), **where)
        except spamc_errors.TimeoutException as exc:
            raise ScanTimeout(f"spamd at {self.address.describe()}: {exc!r}") from None
        except (spamc_errors.AIOSpamcConnectionFailed, OSError, *_RETRYABLE) as exc:
            raise ScannerUnavailable(f"spamd at {self.address.describe()}: {exc!r}") from None
        except (spamc_errors.ClientException, spamc_errors.ParseError, spamc_responses.ResponseException) as exc:
            raise ScanProtocolError(f"spamd at {self.address.describe()}: {exc!r}") from None
        spam = resp.headers.spam
        if spam is None:
            raise ScanProtocolError("spamd answered without a Spam header")
        names = [n.strip() for n in resp.body.decode("utf-8", "replace").split(",") if n.strip()]
        return SpamCheck(verdict="spam" if spam.value else "ham", score=round(float(spam.score), 2),
                         required=float(spam.threshold), engine="spamassassin",
                         symbols=bounded_symbols([SpamSymbol(n) for n in names]))

    async def aclose(self) -> None:
        """Nothing pooled: aiospamc opens a connection per request."""
