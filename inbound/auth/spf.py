"""SPF (RFC 7208) with pyspf; DNS through our resolver.

pyspf evaluates the record (mechanisms, macros, ``include``/``redirect``, the 10-lookup limit of
§4.6.4, ``exp=`` explanations). Its DNS goes through one overridden method of a subclass of
``spf.query`` — :meth:`_Query.dns` — so nothing in pyspf's module is patched and concurrent checks
never share state. :func:`check_spf` is blocking (it waits on DNS): run it in a worker thread.
"""

from __future__ import annotations

import logging

import spf as pyspf

from inbound.auth.results import SpfResult
from inbound.dns import BlockingLookup, DnsAnswer, DnsError

log = logging.getLogger("mailkite.auth.spf")

_VERDICTS = {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"}


class _Query(pyspf.query):
    """pyspf's query whose lookups go to a :class:`BlockingLookup` (our resolver and cache)."""

    def __init__(self, lookup: BlockingLookup, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lookup = lookup

    def dns(self, name, qtype, cnames=None, ignore_void=False):  # noqa: ANN001 - pyspf's signature
        """pyspf's DNS primitive: a list of values for ``name``/``qtype`` (A, AAAA, MX, PTR, TXT).

        Raises ``spf.TempError`` for a DNS failure or timeout, ``spf.PermError`` past the void
        lookup limit (RFC 7208 §4.6.4: more than two lookups answering NXDOMAIN or no records).
        CNAMEs are followed by the resolver.
        """
        if not name:
            raise pyspf.PermError("empty domain name in a DNS lookup")
        name = str(name).rstrip(".").lower()
        if not all(0 < len(label) < 64 for label in name.split(".")):
            return []  # not a valid DNS name: no data (as pyspf)
        key = (name, qtype)
        if key in self.cache:
            result = self.cache[key]
        else:
            try:
                answer = self._lookup.query(name, qtype)
            except DnsError as exc:
                raise pyspf.TempError(f"DNS {exc}") from None
            result = _values(answer, qtype)
            self.cache[key] = result
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > pyspf.MAX_VOID_LOOKUPS:
                raise pyspf.PermError(f"Void lookup limit of {pyspf.MAX_VOID_LOOKUPS} exceeded")
        return result


def _values(answer: DnsAnswer, qtype: str) -> list:
    """Our answer in the shapes pyspf's own DNS drivers return."""
    if qtype in ("TXT", "SPF"):
        return [(record.encode("utf-8"),) for record in answer.records]
    if qtype == "MX":
        out = []
        for record in answer.records:
            pref, host = record.split(None, 1)
            out.append((int(pref), host.rstrip(".")))
        return out
    if qtype == "PTR":
        return [record.rstrip(".") for record in answer.records]
    return list(answer.records)


def check_spf(lookup: BlockingLookup, *, client_ip: str | None, mail_from: str, helo: str | None) -> SpfResult:
    """Evaluate SPF for the MAIL FROM identity, or for HELO when MAIL FROM is the null sender
    (RFC 7208 §2.4: ``postmaster@HELO``). Blocking; never raises.

    ``client_ip``: the SMTP client address (IPv4 or IPv6); ``mail_from``: the reverse-path without
    brackets, ``""`` for ``<>``; ``helo``: the EHLO/HELO argument. Returns :class:`SpfResult`;
    ``none`` when there is nothing to check (no client address, no domain to check, §4.3).
    """
    if mail_from:
        identity, domain = "mailfrom", mail_from.rpartition("@")[2] or (helo or "")
        sender = mail_from
    else:
        identity, domain = "helo", helo or ""
        sender = f"postmaster@{domain}"
    domain = domain.strip().rstrip(".").lower()
    if not client_ip:
        return SpfResult("none", domain or None, identity, sender, "no client IP address")
    if not domain or domain.startswith("[") or "." not in domain:
        # RFC 7208 §4.3: no usable domain (e.g. an address literal in HELO) → "none".
        return SpfResult("none", domain or None, identity, sender, "no domain to check")
    try:
        query = _Query(lookup, i=client_ip, s=mail_from, h=helo or domain, querytime=0)
        verdict, _code, explanation = query.check()
    except pyspf.PermError as exc:
        verdict, explanation = "permerror", f"SPF Permanent Error: {exc}"
    except pyspf.TempError as exc:
        verdict, explanation = "temperror", f"SPF Temporary Error: {exc}"
    except Exception as exc:  # noqa: BLE001 - a pyspf defect must not fail the transaction
        log.exception("spf.internal_error", extra={"kv": {"domain": domain}})
        verdict, explanation = "temperror", f"SPF evaluation failed: {exc.__class__.__name__}"
    if verdict not in _VERDICTS:  # "ambiguous" exists only in pyspf's harsh mode
        verdict = "permerror"
    return SpfResult(verdict, domain, identity, sender, explanation or None)
