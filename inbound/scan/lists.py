"""Per-domain sender allow- and block-lists, applied before any scan (pure: no I/O).

Entries (``mailkite domain set NAME sender_blocklist=a@example.org,example.net,.example.com``):

- ``user@example.org``: that address (compared case-insensitively);
- ``example.org``: any address at exactly that domain;
- ``.example.org``: any address at that domain or any of its subdomains.

The sender is identified twice, by the envelope ``MAIL FROM`` (RFC 5321 §4.1.1.2) and by the
``From:`` header field (RFC 5322 §3.6.2); an entry matches if it matches either. Within one domain a
blocklist match wins over an allowlist match. Across the domains of one transaction the strictest
outcome applies: blocked if any domain blocks the sender, allowed only if every domain allows it.
Allowing skips the spam scan (verdict ``ham``, engine ``sender_allowlist``); it never skips the
virus scan. Blocking skips both scans and refuses the message (``550 5.7.1``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from inbound.scan.results import SenderListMatch
from store.domains import DomainInfo


def _entry_matches(entry: str, address: str) -> bool:
    if "@" in entry:
        return entry == address
    domain = address.rpartition("@")[2]
    if entry.startswith("."):
        return domain == entry[1:] or domain.endswith(entry)
    return domain == entry


def _first_match(entries: Iterable[str], senders: Sequence[str]) -> tuple[str, str] | None:
    for entry in entries:
        for sender in senders:
            if _entry_matches(entry, sender):
                return entry, sender
    return None


def normalize_senders(addresses: Iterable[str | None]) -> tuple[str, ...]:
    """Distinct, lower-cased addr-specs that have a domain part, in order (the null reverse-path
    ``<>`` and malformed values drop out)."""
    out: list[str] = []
    for value in addresses:
        addr = (value or "").strip().strip("<>").lower()
        if "@" in addr and addr.rpartition("@")[2] and addr not in out:
            out.append(addr)
    return tuple(out)


def match_sender_lists(domains: Sequence[DomainInfo], senders: Sequence[str]) -> SenderListMatch | None:
    """The list outcome for one transaction (rules in the module docstring): a ``block`` match, an
    ``allow`` match (every domain allows), or None. ``senders`` come from :func:`normalize_senders`."""
    if not domains or not senders:
        return None
    allowed: list[SenderListMatch] = []
    for info in domains:
        hit = _first_match(info.policy.sender_blocklist, senders)
        if hit:
            return SenderListMatch("block", hit[0], hit[1], info.name)
        hit = _first_match(info.policy.sender_allowlist, senders)
        if hit:
            allowed.append(SenderListMatch("allow", hit[0], hit[1], info.name))
    return allowed[0] if len(allowed) == len(domains) else None
