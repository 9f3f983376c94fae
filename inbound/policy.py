"""The one decision at end of DATA: facts in, accept / reject / defer out, with a named reason.

Pure: no I/O. Each rule is its own function returning a :class:`Decision` or None, with its own
reason name, so every refusal is explained the same way. :func:`decide` runs every rule and keeps
the strictest answer (reject over defer over accept; between two of the same kind, the earlier
rule). Rules look at every recipient domain of the transaction, so a multi-domain transaction gets
the strictest outcome any of its domains asks for (one end-of-DATA reply answers them all).

Scan rules (inbound.scan), in order:

- ``sender_blocklist``: a recipient domain blocks the sender → ``550 5.7.1`` (nothing scanned).
- ``virus``: malware found → ``554 5.7.1`` (RFC 3463 §3.8: 5.7.1 delivery not authorized,
  message refused), whatever the domain settings; infected mail is never accepted.
- ``spam_reject``: a scanned spam score at or above a domain's ``spam_reject_score``
  (off by default) → ``550 5.7.1``; an allow-listed sender is never refused for spam.
- ``scan_too_large``: the message exceeds what the virus scanner accepts → ``552 5.3.4``
  (RFC 3463 §3.4: message too big for policy), unless every domain is ``scan_fail_open``.
- ``scanner_unavailable``: a configured scanner is down, too slow, or answered nonsense →
  ``451 4.7.1`` so the sender retries (RFC 5321 §4.2.5), unless every domain is ``scan_fail_open``
  (then the message is accepted with that verdict ``unscanned``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inbound.types import AuthResults, Decision, ScanResults
from store.domains import DomainInfo

RETRYABLE_SCAN_FAILURES = frozenset({"unavailable", "timeout", "protocol_error", "error"})
_RANK = {"accept": 0, "defer": 1, "reject": 2}


@dataclass(frozen=True)
class Facts:
    """Everything the decision may look at for one transaction."""

    domains: tuple[DomainInfo, ...]
    auth: AuthResults
    scan: ScanResults
    mail_from: str


Rule = Callable[[Facts], "Decision | None"]


def _all_fail_open(facts: Facts) -> bool:
    return bool(facts.domains) and all(d.policy.scan_fail_open for d in facts.domains)


def sender_blocklist(facts: Facts) -> Decision | None:
    """Refuse senders on a recipient domain's blocklist (``550 5.7.1``)."""
    listed = facts.scan.sender_list
    if listed is None or listed.action != "block":
        return None
    return Decision("reject", "sender_blocklist",
                    f"550 5.7.1 Message refused: sender {listed.sender} is blocked by {listed.domain}")


def virus(facts: Facts) -> Decision | None:
    """Refuse malware (``554 5.7.1``), naming the signature."""
    check = facts.scan.virus_check
    if check.verdict != "infected":
        return None
    names = ", ".join(check.signatures) or "unnamed"
    return Decision("reject", "virus", f"554 5.7.1 Message refused: malware detected ({names})")


def spam_reject(facts: Facts) -> Decision | None:
    """Refuse spam scoring at or above the lowest ``spam_reject_score`` of the recipient domains."""
    check = facts.scan.spam_check
    if check.verdict == "unscanned" or facts.scan.sender_list is not None:
        return None
    limits = [d.policy.spam_reject_score for d in facts.domains if d.policy.spam_reject_score is not None]
    if not limits or check.score < min(limits):
        return None
    return Decision("reject", "spam_reject",
                    f"550 5.7.1 Message refused as spam (score {check.score:.1f}, limit {min(limits):.1f})")


def scan_too_large(facts: Facts) -> Decision | None:
    """Refuse a message the virus scanner cannot take (``552 5.3.4``) unless fail-open."""
    failed = [c for c in (facts.scan.spam_check, facts.scan.virus_check) if c.failure == "too_large"]
    if not failed or _all_fail_open(facts):
        return None
    return Decision("reject", "scan_too_large", "552 5.3.4 Message too big to be scanned for malware")


def scanner_unavailable(facts: Facts) -> Decision | None:
    """Defer (``451 4.7.1``) when a configured scanner gave no verdict, unless fail-open."""
    failed = [c.engine for c in (facts.scan.spam_check, facts.scan.virus_check)
              if c.failure in RETRYABLE_SCAN_FAILURES]
    if not failed or _all_fail_open(facts):
        return None
    return Decision("defer", "scanner_unavailable",
                    "451 4.7.1 Message could not be scanned right now; please try again later")


SCAN_RULES: tuple[Rule, ...] = (sender_blocklist, virus, spam_reject, scan_too_large, scanner_unavailable)


def decide(facts: Facts) -> Decision:
    """Run every rule; the strictest answer wins (reject over defer over accept). Among answers of
    the same strictness the first rule in :data:`RULES` wins, and a named accept (e.g.
    ``dmarc_quarantine``) is kept over the plain ``ok``."""
    chosen = Decision.accept()
    for rule in RULES:
        decision = rule(facts)
        if decision is None:
            continue
        stricter = _RANK[decision.action] > _RANK[chosen.action]
        if stricter or (decision.action == chosen.action == "accept" and chosen.reason == "ok"):
            chosen = decision
    return chosen


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


# Order matters only among answers of the same strictness: the first one names the reason.
RULES: tuple[Rule, ...] = (sender_blocklist, virus, dmarc_rule, spam_reject, scan_too_large, scanner_unavailable)
