"""The one decision at end of DATA: facts in, accept / reject / defer out, with a named reason.

Pure: no I/O. Later checks (DMARC rejection, virus, spam score, scanner outages, sender lists) add
their rules here, each with its own reason name, so every refusal is explained the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbound.types import AuthResults, Decision, ScanResults
from store.domains import DomainInfo


@dataclass(frozen=True)
class Facts:
    """Everything the decision may look at for one transaction."""

    domains: tuple[DomainInfo, ...]
    auth: AuthResults
    scan: ScanResults
    mail_from: str


def decide(facts: Facts) -> Decision:
    """Accept unless a rule says otherwise. Returns a :class:`Decision`."""
    dmarc = dmarc_rule(facts)
    if dmarc is not None:
        return dmarc
    return Decision.accept()


REPLY_DMARC_REJECT = "550 5.7.1 Message rejected: DMARC policy of {domain} is reject and authentication failed"


def dmarc_rule(facts: Facts) -> Decision | None:
    """DMARC enforcement (RFC 7489 §6.6.4, §10.3), per receiving domain, default off.

    - ``dmarc_reject``: the From domain's owner asks for ``reject`` (after ``pct`` sampling) and
      DMARC failed, and a recipient's domain has ``dmarc_reject`` on → reject in the session with
      ``550 5.7.1`` (no backscatter). One recipient domain asking is enough: the sender's own policy
      requested rejection, and otherwise adding a lenient recipient would let a forgery through.
    - ``dmarc_quarantine``: DMARC failed and the owner asks for ``quarantine`` (or ``reject`` with
      enforcement off) → accepted, the verdict shown in the webhook ``auth`` object.
    ``temperror``/``permerror``/``none`` never refuse. Returns None when the rule does not apply.
    """
    dmarc = facts.auth.dmarc
    if dmarc.result != "fail" or dmarc.disposition == "none":
        return None
    if dmarc.disposition == "reject" and any(d.policy.dmarc_reject for d in facts.domains):
        return Decision("reject", "dmarc_reject", REPLY_DMARC_REJECT.format(domain=dmarc.domain))
    return Decision.accept("dmarc_quarantine")
