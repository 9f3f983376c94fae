"""DMARC (RFC 7489): policy discovery, identifier alignment and the result.

- :func:`from_domains` — the RFC5322.From domain(s) of a message (§6.6.1).
- :func:`organizational_domain` — §3.2, from the public suffix list (``checkdmarc.utils.get_base_domain``,
  which uses the ``publicsuffixlist`` package's bundled list: no network).
- :func:`parse_record` — §6.3 record syntax, checked by checkdmarc's grammar.
- :func:`lookup_policy` — §6.6.3 discovery (``_dmarc.<From domain>``, then ``_dmarc.<organizational
  domain>``) through our resolver. checkdmarc can reach nameservers on custom ports, but its lookups
  bypass our resolver's cache and deadline and follow RFC 9989's tree walk, and its record parser
  verifies ``rua``/``ruf`` destinations over DNS; so checkdmarc only parses (report URIs removed
  first: they do not change the verdict) and our resolver does the lookups.
- :func:`evaluate` — the one pure function: lookup + SPF + DKIM results → :class:`DmarcResult`.
- :func:`strictest` — the verdict for a message whose From holds several domains.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import replace
from email.parser import HeaderParser
from email.policy import compat32
from functools import lru_cache
from typing import Callable, Sequence

from checkdmarc.dmarc import DMARCError, parse_dmarc_record
from checkdmarc.utils import get_base_domain

from inbound.auth import DmarcSyntaxError
from inbound.auth.results import (DkimResult, DmarcLookup, DmarcPolicyName, DmarcRecord, DmarcResult,
                                  SpfResult)
from inbound.dns import DnsError, Resolver

MAX_FROM_DOMAINS = 5  # bound on policy lookups for one message
MAX_HEADER_BYTES = 256 * 1024
_REPORT_TAG = re.compile(r"^\s*ru[af]\s*=", re.I)
_DOMAIN = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (``a.b.example.co.uk`` → ``example.co.uk``);
    a public suffix itself maps to itself."""
    return _org(domain.lower().rstrip("."))


@lru_cache(maxsize=4096)
def _org(domain: str) -> str:
    return get_base_domain(domain)


def from_domains(raw: bytes) -> list[str]:
    """Distinct domains of every mailbox in every ``From`` field (RFC 7489 §6.6.1), lowercase ASCII,
    in order; empty when there is none. Reads at most :data:`MAX_HEADER_BYTES` of header."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i != -1), default=len(raw))
    block = raw[: min(end, MAX_HEADER_BYTES)].decode("utf-8", "replace")  # RFC 6532 raw UTF-8 allowed
    try:
        headers = HeaderParser(policy=compat32).parsestr(block + "\r\n\r\n")
        addresses = email.utils.getaddresses([str(v) for v in headers.get_all("From") or []])
    except Exception:  # noqa: BLE001 - stdlib parser defects on hostile headers: no From domain
        return []
    domains: list[str] = []
    for _name, address in addresses:
        domain = _ascii_domain(address.rpartition("@")[2]) if "@" in address else None
        if domain and domain not in domains:
            domains.append(domain)
    return domains[:MAX_FROM_DOMAINS]


def _ascii_domain(value: str) -> str | None:
    value = value.strip().strip(">").rstrip(".").lower()
    try:
        value = value.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    return value if _DOMAIN.match(value) else None


@lru_cache(maxsize=1024)
def parse_record(text: str) -> DmarcRecord:
    """Parse a DMARC record (RFC 7489 §6.3). Raises :class:`DmarcSyntaxError`.

    A missing ``p`` counts as ``p=none`` (RFC 7489 §6.6.3 with reporting, RFC 9989 always); ``sp``
    defaults to ``p``; ``np`` (RFC 9091) is kept only when published; ``pct`` is 0–100.
    """
    tags = text.split(";")
    kept = ";".join(t for t in tags if not _REPORT_TAG.match(t))
    try:
        parsed = parse_dmarc_record(kept, "dmarc.invalid")["tags"]
    except DMARCError as exc:
        raise DmarcSyntaxError(str(exc).replace("\n", " ")) from None
    except Exception as exc:  # noqa: BLE001 - checkdmarc's grammar on hostile input: still a bad record
        raise DmarcSyntaxError(f"unparsable record ({exc.__class__.__name__})") from None
    pct = 100
    for tag in tags:
        key, _, value = tag.partition("=")
        if key.strip().lower() == "pct":
            if not value.strip().isdigit() or not 0 <= int(value) <= 100:
                raise DmarcSyntaxError(f"pct must be an integer from 0 to 100, not {value.strip()!r}")
            pct = int(value)
    np_tag = parsed.get("np", {})
    return DmarcRecord(p=parsed["p"]["value"], sp=parsed["sp"]["value"],
                       np=np_tag["value"] if np_tag.get("explicit") else None, pct=pct,
                       adkim=parsed["adkim"]["value"], aspf=parsed["aspf"]["value"])


async def lookup_policy(resolver: Resolver, from_domain: str) -> DmarcLookup:
    """RFC 7489 §6.6.3 policy discovery for ``from_domain`` through ``resolver``. Never raises.

    Only TXT records starting with ``v=DMARC1`` count; more than one at a name means none there.
    For ``np`` (RFC 9091 §2.1) the From domain's existence is checked when the record came from
    the organizational domain and publishes ``np``.
    """
    org = organizational_domain(from_domain)
    record_domain = None
    text = None
    try:
        for candidate in dict.fromkeys((from_domain, org)):
            found = [t for t in await resolver.txt(f"_dmarc.{candidate}") if _is_dmarc(t)]
            if len(found) == 1:
                record_domain, text = candidate, found[0]
                break
    except DnsError as exc:
        return DmarcLookup("temperror", from_domain, org, reason=f"policy lookup failed: {exc}")
    if text is None:
        return DmarcLookup("none", from_domain, org, reason="no DMARC record")
    try:
        record = parse_record(text)
    except DmarcSyntaxError as exc:
        return DmarcLookup("permerror", from_domain, org, record_domain=record_domain, reason=str(exc))
    exists = True
    if record.np is not None and record_domain != from_domain:
        try:
            exists = not (await resolver.query(from_domain, "A")).nxdomain
        except DnsError:
            exists = True  # unknown: fall back to sp
    return DmarcLookup("found", from_domain, org, record, record_domain, None, exists)


def _is_dmarc(text: str) -> bool:
    return re.match(r"^v\s*=\s*DMARC1\s*(;|$)", text, re.I) is not None


def aligned(identifier: str | None, from_domain: str, mode: str,
            org: Callable[[str], str] = organizational_domain) -> bool:
    """RFC 7489 §3.1: strict (``s``) needs the same domain; relaxed (``r``) the same
    organizational domain."""
    if not identifier:
        return False
    a, b = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b if mode == "s" else org(a) == org(b)


_LOWER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


def evaluate(lookup: DmarcLookup, spf: SpfResult, dkim: Sequence[DkimResult], *, sample: float = 0.0,
             org: Callable[[str], str] = organizational_domain) -> DmarcResult:
    """The DMARC result for one From domain. Pure.

    ``sample`` in [0, 1) is the random draw for ``pct`` (§6.6.4): the requested policy applies when
    ``sample * 100 < pct``, else the next lower one. Rules:
    - no record → ``none``; DNS failure → ``temperror``; unparsable record → ``permerror``;
    - ``pass`` when SPF passed for an aligned domain (``aspf``) or a DKIM signature passed for an
      aligned ``d=`` (``adkim``) (§4.2);
    - otherwise ``temperror`` when an aligned identifier could not be checked (SPF or DKIM
      ``temperror``): the failure may be the network's, not the sender's;
    - otherwise ``fail``, with ``disposition`` = the policy after sampling.
    The requested policy is ``p`` when the record is the From domain's own, else ``sp`` (§6.6.3),
    or ``np`` when the From domain does not exist (RFC 9091).
    """
    base = DmarcResult(domain=lookup.from_domain, record_domain=lookup.record_domain, reason=lookup.reason)
    if lookup.status != "found" or lookup.record is None:
        return replace(base, result=lookup.status)
    rec = lookup.record
    policy: DmarcPolicyName = rec.p
    if lookup.record_domain != lookup.from_domain:
        policy = rec.np if (rec.np and not lookup.from_domain_exists) else rec.sp
    found = replace(base, policy=policy, p=rec.p, sp=rec.sp, pct=rec.pct, reason=None)
    spf_ok = spf.result == "pass" and aligned(spf.domain, lookup.from_domain, rec.aspf, org)
    dkim_ok = any(d.result == "pass" and aligned(d.domain, lookup.from_domain, rec.adkim, org) for d in dkim)
    if spf_ok or dkim_ok:
        return replace(found, result="pass", aligned_spf=spf_ok, aligned_dkim=dkim_ok)
    unsure = (spf.result == "temperror" and aligned(spf.domain, lookup.from_domain, rec.aspf, org)) or any(
        d.result == "temperror" and aligned(d.domain, lookup.from_domain, rec.adkim, org) for d in dkim)
    if unsure:
        return replace(found, result="temperror", reason="an aligned identifier could not be checked")
    disposition = policy if sample * 100 < rec.pct else _LOWER[policy]
    return replace(found, result="fail", disposition=disposition, reason="no aligned SPF or DKIM pass")


_RANK = {"fail": 0, "temperror": 1, "permerror": 2, "pass": 3, "none": 4}
_SEVERITY = {"reject": 0, "quarantine": 1, "none": 2, None: 3}


def strictest(results: Sequence[DmarcResult]) -> DmarcResult | None:
    """For a From field naming several domains (RFC 7489 §6.6.1): the verdict that protects most —
    a failure (the one with the strongest disposition first) over any uncertainty over a pass."""
    if not results:
        return None
    return min(results, key=lambda r: (_RANK[r.result], _SEVERITY[r.disposition], _SEVERITY[r.policy]))
