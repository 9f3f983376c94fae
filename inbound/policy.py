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
    return Decision.accept()
