"""Typed values passed between the inbound stages.

``SmtpEnvelope`` + raw bytes → checks (:class:`AuthResults`, :class:`ScanResults`) →
``policy.decide`` → :class:`Decision`; the pipeline then parses and stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from inbound.auth.results import ArcResult, DkimResult, DmarcResult, SpfResult
from inbound.scan.results import SenderListMatch, SpamCheck, VirusCheck


@dataclass(frozen=True)
class SmtpEnvelope:
    """The SMTP envelope of one transaction (RFC 5321 §2.3.1).

    ``mail_from`` is ``""`` for the null reverse-path (``MAIL FROM:<>``); ``rcpt_to`` holds the
    accepted recipients in order; ``client_ip`` the peer address; ``helo`` the EHLO/HELO argument.
    """

    mail_from: str
    rcpt_to: tuple[str, ...]
    client_ip: str | None
    helo: str | None
    tls: bool
    received_at: datetime
    smtputf8: bool = False
    session_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"mail_from": self.mail_from, "rcpt_to": list(self.rcpt_to), "client_ip": self.client_ip,
                "helo": self.helo, "tls": self.tls}


@dataclass(frozen=True)
class AuthResults:
    """SPF/DKIM/DMARC/ARC verdicts (typed, :mod:`inbound.auth.results`) for one message.

    ``to_json()`` is the webhook ``auth`` object (DESIGN.md). ``header`` is the
    ``Authentication-Results`` field (RFC 8601) to prepend to the stored copy, folded with CRLF,
    without the trailing CRLF, or None when no check ran; ``authserv_id`` the id it carries (fields
    with that id arriving from outside are removed, RFC 8601 §5). ``decision`` is the reason of the
    end-of-DATA decision for an accepted message (e.g. ``dmarc_quarantine``), stored with it.
    """

    spf: SpfResult = field(default_factory=SpfResult)
    dkim: tuple[DkimResult, ...] = ()
    dmarc: DmarcResult = field(default_factory=DmarcResult)
    arc: ArcResult = field(default_factory=ArcResult)
    header: str | None = None
    authserv_id: str | None = None
    decision: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"spf": self.spf.to_json(), "dkim": [d.to_json() for d in self.dkim], "dmarc": self.dmarc.to_json(),
                "arc": self.arc.to_json(), "decision": self.decision}

    def with_decision(self, reason: str) -> "AuthResults":
        """A copy recording the end-of-DATA decision's reason."""
        return replace(self, decision=reason)


@dataclass(frozen=True)
class ScanResults:
    """Spam and virus verdicts (:mod:`inbound.scan`). ``spam`` / ``virus`` are exactly the webhook
    ``spam`` and ``virus`` objects (DESIGN.md; ``spam`` also has ``required``); ``spam_check`` /
    ``virus_check`` the typed verdicts behind them (with the ``failure`` reason of an engine that
    gave none); ``sender_list`` the allow/block-list entry that decided, if any; ``headers`` the trace
    fields (``X-Spam-Status``…, without trailing CRLF) prepended to the stored copy."""

    spam_check: SpamCheck = field(default_factory=SpamCheck)
    virus_check: VirusCheck = field(default_factory=VirusCheck)
    sender_list: SenderListMatch | None = None
    headers: tuple[str, ...] = ()

    @property
    def spam(self) -> dict[str, Any]:
        return self.spam_check.to_json()

    @property
    def virus(self) -> dict[str, Any]:
        return self.virus_check.to_json()


Action = Literal["accept", "reject", "defer"]


@dataclass(frozen=True)
class Decision:
    """What to answer at end of DATA: ``accept`` (continue to store, then 250), ``reject`` (5xx) or
    ``defer`` (4xx). ``reply`` is the full SMTP reply line for reject/defer; ``reason`` a stable
    name for logs and metrics (``dmarc_reject``, ``virus``, ``scanner_unavailable``…)."""

    action: Action
    reason: str
    reply: str | None = None

    @classmethod
    def accept(cls, reason: str = "ok") -> "Decision":
        return cls("accept", reason)
