"""rspamd adapter: ``POST /checkv2`` to rspamd's normal worker over httpx (rspamd protocol,
https://rspamd.com/doc/developers/protocol.html).

The request carries what rspamd would otherwise work out again: the envelope (``From``, one
``Rcpt`` per recipient), the client (``IP``, ``Helo``), our queue id (``Queue-Id``) and our own
authentication verdicts as rspamd's ``SPF``, ``DKIM`` and ``DMARC`` request headers. rspamd's
``http_headers`` module (enable it: ``local.d/http_headers.conf`` with ``enabled = true;``) turns
those into its usual symbols (``R_SPF_ALLOW``, ``R_DKIM_REJECT``, ``DMARC_POLICY_REJECT``…) and skips
its own SPF, DKIM and DMARC lookups, so no DNS work is done twice.

Verdict: ``spam`` when rspamd's action is ``add header``, ``rewrite subject`` or ``reject`` (its
``actions`` thresholds decide), else ``ham``; ``score`` is rspamd's score, ``required`` its
``required_score`` (the ``reject`` threshold), ``symbols`` its symbols with their scores and options.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from inbound.scan.engines import ScannerAddress
from inbound.scan.errors import ScannerUnavailable, ScanProtocolError, ScanTimeout
from inbound.scan.results import SpamCheck, SpamSymbol, bounded_symbols
from inbound.types import AuthResults, SmtpEnvelope

SPAM_ACTIONS = frozenset({"reject", "add header", "rewrite subject"})
_CTL = re.compile(r"[\x00-\x1f\x7f]")

# Our verdict vocabulary (RFC 7208 §2.6, RFC 8601 §2.7.1, RFC 7489 §11.2) → the words rspamd's
# http_headers module reads.
_SPF = {"pass": "pass", "fail": "fail", "softfail": "softfail", "neutral": "neutral", "none": "na",
        "temperror": "tempfail", "permerror": "permfail"}
_DKIM = {"pass": "pass", "fail": "fail", "temperror": "tempfail", "permerror": "permfail", "none": "na",
         "neutral": "na", "policy": "fail"}
_DMARC_FAIL_BY_POLICY = {"reject": "reject", "quarantine": "quarantine"}
_DMARC = {"pass": "pass", "none": "na", "temperror": "tempfail", "permerror": "permfail"}


def auth_request_headers(auth: AuthResults) -> list[tuple[str, str]]:
    """Our SPF/DKIM/DMARC verdicts as rspamd ``http_headers`` request headers (JSON values)."""
    spf = _SPF.get(auth.spf.result, "na")
    dkim = [{"result": _DKIM.get(d.result, "na"), "domain": d.domain or "unknown"} for d in auth.dkim]
    if auth.dmarc.result == "fail":
        dmarc = _DMARC_FAIL_BY_POLICY.get(str(auth.dmarc.policy), "softfail")
    else:
        dmarc = _DMARC.get(auth.dmarc.result, "na")
    return [("SPF", json.dumps({"result": spf})),
            ("DKIM", json.dumps({"results": dkim} if dkim else {"result": "na"})),
            ("DMARC", json.dumps({"result": dmarc}))]


def _clean(value: str) -> bytes:
    return _CTL.sub("", value).encode("utf-8")


class RspamdClient:
    """One per MX process (one pooled ``httpx.AsyncClient``). Implements
    :class:`~inbound.scan.engines.SpamEngine`; raises :class:`ScannerUnavailable`,
    :class:`ScanTimeout` or :class:`ScanProtocolError`."""

    name = "rspamd"

    def __init__(self, address: ScannerAddress) -> None:
        self.address = address
        self.timeout_s = address.timeout_s
        if address.socket_path:
            transport = httpx.AsyncHTTPTransport(uds=str(address.socket_path))
            self._url = "http://rspamd/checkv2"
        else:
            transport = httpx.AsyncHTTPTransport()
            host = f"[{address.host}]" if ":" in (address.host or "") else address.host
            self._url = f"http://{host}:{address.port}/checkv2"
        # The caller enforces the per-scan deadline; this one only stops a socket from living forever.
        self._client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(self.timeout_s + 5),
                                         limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))

    def request_headers(self, envelope: SmtpEnvelope, auth: AuthResults) -> list[tuple[str, bytes]]:
        """The rspamd protocol request headers for one message (see the module docstring)."""
        headers: list[tuple[str, bytes]] = []
        if envelope.mail_from:
            headers.append(("From", _clean(envelope.mail_from)))
        headers += [("Rcpt", _clean(r)) for r in envelope.rcpt_to]
        if envelope.client_ip:
            headers.append(("IP", _clean(envelope.client_ip)))
        if envelope.helo:
            headers.append(("Helo", _clean(envelope.helo)))
        if envelope.session_id:
            headers.append(("Queue-Id", _clean(envelope.session_id)))
        headers += [(k, v.encode()) for k, v in auth_request_headers(auth)]
        return headers

    async def check(self, envelope: SmtpEnvelope, raw: bytes, auth: AuthResults) -> SpamCheck:
        """Scan ``raw`` (the message as received). Returns a ``ham``/``spam`` :class:`SpamCheck`."""
        try:
            resp = await self._client.post(self._url, content=raw, headers=self.request_headers(envelope, auth))
        except httpx.TimeoutException as exc:
            raise ScanTimeout(f"rspamd at {self.address.describe()}: {exc!r}") from None
        except (httpx.TransportError, OSError) as exc:
            raise ScannerUnavailable(f"rspamd at {self.address.describe()}: {exc!r}") from None
        if resp.status_code >= 500:
            raise ScannerUnavailable(f"rspamd answered HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code != 200:
            raise ScanProtocolError(f"rspamd answered HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            return parse_checkv2(resp.json())
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ScanProtocolError(f"unreadable rspamd answer: {exc!r}") from None

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_checkv2(doc: dict[str, Any]) -> SpamCheck:
    """A :class:`SpamCheck` from rspamd's ``/checkv2`` JSON. Raises ValueError/KeyError/TypeError on
    an answer without ``action`` and ``score``."""
    if "error" in doc and "action" not in doc:
        raise ValueError(str(doc["error"])[:200])
    action = str(doc["action"])
    symbols = [SpamSymbol(str(name), float(sym.get("score", 0.0)), tuple(str(o) for o in sym.get("options", ())))
               for name, sym in (doc.get("symbols") or {}).items()]
    required = doc.get("required_score")
    return SpamCheck(verdict="spam" if action in SPAM_ACTIONS else "ham", score=round(float(doc["score"]), 2),
                     required=None if required is None else float(required), engine="rspamd",
                     symbols=bounded_symbols(symbols))
