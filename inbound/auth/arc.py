"""ARC chain validation (RFC 8617 §5.2) with dkimpy.

dkimpy's ``ARC.verify`` returns the chain validation status (``cv``) and per-instance details; key
lookups go to our resolver through a :class:`BlockingLookup`. dkimpy turns a failed key lookup into
an invalid seal, so when the chain fails and a key lookup had a DNS error we report ``temperror``
instead of ``fail``. Blocking and CPU-bound: run in a worker thread.
"""

from __future__ import annotations

import logging

import dkim as dkimpy

from inbound.auth.dkim import DKIMPY_LOG
from inbound.auth.results import ArcResult
from inbound.dns import BlockingLookup, DnsError

log = logging.getLogger("mailkite.auth.arc")

MAX_INSTANCES = 50  # RFC 8617 §4.2.1: i= is 1..50


def verify_arc(raw: bytes, lookup: BlockingLookup) -> ArcResult:
    """Validate the ARC chain of ``raw``. Blocking; never raises.

    Returns :class:`ArcResult`: ``none`` without ARC sets, ``pass`` for a valid chain, ``fail`` for
    a broken one (with dkimpy's reason), ``temperror`` when it failed while a key could not be
    fetched. ``sealers`` lists each ARC-Seal's ``d=`` from instance 1 up.
    """
    dns_errors: list[DnsError] = []

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = lookup.query(name.decode("ascii", "replace"), "TXT")
        except DnsError as exc:
            dns_errors.append(exc)
            raise dkimpy.DnsTimeoutError(str(exc)) from None
        return answer.records[0].encode("utf-8") if answer.records else None

    try:
        arc = dkimpy.ARC(raw, minkey=1024, logger=DKIMPY_LOG)
        top, _ = arc.sorted_arc_headers()
        if top > MAX_INSTANCES:
            return ArcResult("fail", (), top, f"more than {MAX_INSTANCES} ARC sets (RFC 8617 §4.2.1)")
        cv, details, reason = arc.verify(dnsfunc=dnsfunc)
    except dkimpy.DKIMException as exc:
        cv, details, reason = dkimpy.CV_Fail, [], str(exc)
    except Exception as exc:  # noqa: BLE001 - a dkimpy defect must not fail the transaction
        log.exception("arc.internal_error")
        return ArcResult("temperror", (), 0, f"validation failed: {exc.__class__.__name__}")
    sealers = tuple(_text(d.get("as-domain")) for d in sorted(details, key=lambda d: d["instance"]))
    instances = max((d["instance"] for d in details), default=0)
    if cv == dkimpy.CV_None:
        return ArcResult("none", sealers, instances, None)
    if cv == dkimpy.CV_Pass:
        return ArcResult("pass", sealers, instances, None)
    if dns_errors:
        return ArcResult("temperror", sealers, instances, f"key lookup failed: {dns_errors[-1]}")
    return ArcResult("fail", sealers, instances, _text(reason))


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").lower()
    return str(value or "")
