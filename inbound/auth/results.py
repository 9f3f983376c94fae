"""Typed verdicts of the authentication checks, in the vocabulary of their RFCs.

Each result serialises (``to_json()``) to its part of the webhook ``auth`` object (DESIGN.md); the
result words are those of the RFC 8601 method registry, so they also go unchanged into the
``Authentication-Results`` header:

- SPF (RFC 7208 §2.6): ``pass fail softfail neutral none temperror permerror``
- DKIM (RFC 8601 §2.7.1): ``pass fail policy neutral none temperror permerror`` (one per signature)
- ARC (RFC 8617 §4.4, chain validation status): ``pass fail none``, plus ``temperror`` when a key
  could not be fetched (a DNS outage is not evidence of a broken chain)
- DMARC (RFC 7489 §11.2): ``pass fail none temperror permerror``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SpfVerdict = Literal["pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"]
DkimVerdict = Literal["pass", "fail", "policy", "neutral", "none", "temperror", "permerror"]
ArcVerdict = Literal["pass", "fail", "none", "temperror"]
DmarcVerdict = Literal["pass", "fail", "none", "temperror", "permerror"]
DmarcPolicyName = Literal["none", "quarantine", "reject"]


@dataclass(frozen=True)
class SpfResult:
    """RFC 7208 check of one identity.

    ``identity`` is ``mailfrom`` (RFC 7208 §2.4) or ``helo`` (§2.3, used when MAIL FROM is the null
    sender); ``domain`` the domain checked; ``sender`` the checked address (``postmaster@HELO`` for
    the helo identity); ``explanation`` pyspf's text (the record's ``exp=`` for a fail, §6.2).
    """

    result: SpfVerdict = "none"
    domain: str | None = None
    identity: Literal["mailfrom", "helo"] | None = None
    sender: str | None = None
    explanation: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "domain": self.domain, "identity": self.identity,
                "explanation": self.explanation}


@dataclass(frozen=True)
class DkimResult:
    """RFC 6376 verification of one ``DKIM-Signature`` (``domain`` = ``d=``, ``selector`` = ``s=``,
    ``algorithm`` = ``a=``, ``identity`` = ``i=``). ``reason`` says why anything but ``pass``;
    ``key_bits`` is the public key size; ``b_prefix`` the first characters of ``b=`` (RFC 6008,
    to tell signatures apart in the header)."""

    result: DkimVerdict
    domain: str | None = None
    selector: str | None = None
    algorithm: str | None = None
    identity: str | None = None
    reason: str | None = None
    key_bits: int | None = None
    b_prefix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "domain": self.domain, "selector": self.selector,
                "algorithm": self.algorithm, "reason": self.reason}


@dataclass(frozen=True)
class ArcResult:
    """RFC 8617 chain validation. ``sealers``: the ``d=`` of each ARC-Seal, instance 1 first;
    ``instances``: the highest ``i=``; ``reason`` explains anything but ``pass``/``none``."""

    result: ArcVerdict = "none"
    sealers: tuple[str, ...] = ()
    instances: int = 0
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "sealers": list(self.sealers), "reason": self.reason}


@dataclass(frozen=True)
class DmarcResult:
    """RFC 7489 evaluation for the RFC5322.From domain ``domain``.

    ``policy``: the policy the domain owner requests for this message (``p``, or ``sp`` for a
    subdomain when the record came from the organizational domain, §6.6.3; ``np`` for a
    non-existent subdomain, RFC 9091); ``disposition``: what that means for this message after
    ``pct`` sampling (§6.6.4), ``none`` unless the result is ``fail``. ``p``/``sp``/``pct`` are the
    published values and ``record_domain`` where the record was found. ``aligned_spf`` /
    ``aligned_dkim`` tell which identifier passed aligned (§3.1).
    """

    result: DmarcVerdict = "none"
    domain: str | None = None
    policy: DmarcPolicyName | None = None
    disposition: DmarcPolicyName = "none"
    p: DmarcPolicyName | None = None
    sp: DmarcPolicyName | None = None
    pct: int | None = None
    record_domain: str | None = None
    aligned_spf: bool = False
    aligned_dkim: bool = False
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "policy": self.policy, "domain": self.domain,
                "disposition": self.disposition, "p": self.p, "sp": self.sp, "pct": self.pct,
                "record_domain": self.record_domain,
                "alignment": {"spf": self.aligned_spf, "dkim": self.aligned_dkim}, "reason": self.reason}


@dataclass(frozen=True)
class DmarcRecord:
    """A parsed DMARC policy record (RFC 7489 §6.3). ``adkim``/``aspf``: ``r`` or ``s``."""

    p: DmarcPolicyName
    sp: DmarcPolicyName
    np: DmarcPolicyName | None = None
    pct: int = 100
    adkim: Literal["r", "s"] = "r"
    aspf: Literal["r", "s"] = "r"


@dataclass(frozen=True)
class DmarcLookup:
    """What the DNS said about the policy for a From domain (RFC 7489 §6.6.3).

    ``status``: ``found`` (``record`` set, found at ``record_domain``), ``none`` (no record at the
    From domain nor its organizational domain), ``temperror`` (DNS failed) or ``permerror`` (a
    record that cannot be parsed). ``from_domain_exists`` is False only when the From domain is
    known not to exist (NXDOMAIN), for ``np``.
    """

    status: Literal["found", "none", "temperror", "permerror"]
    from_domain: str
    org_domain: str
    record: DmarcRecord | None = None
    record_domain: str | None = None
    reason: str | None = None
    from_domain_exists: bool = True
