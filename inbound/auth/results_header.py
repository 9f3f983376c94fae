"""The ``Authentication-Results`` header field (RFC 8601): writing ours, removing forged ones.

- :func:`build_header` renders the verdicts with the ``authres`` package (RFC 8601 syntax and
  property names; ``header.a``/``header.s`` per RFC 8601 §2.7.1, ``header.b`` per RFC 6008) and folds
  the field (RFC 5322 §2.2.3) at the result separators.
- :func:`strip_own_results` removes, byte-exactly, every ``Authentication-Results`` field of a raw
  message that carries our authserv-id: a receiver MUST delete such fields arriving from outside
  its trust boundary (RFC 8601 §5), or a sender could forge our verdicts. Other fields, and
  ``ARC-Authentication-Results`` (RFC 8617), are kept untouched.
"""

from __future__ import annotations

import re
from typing import Sequence

import authres
import authres.arc
import authres.dmarc

from inbound.auth.results import ArcResult, DkimResult, DmarcResult, SpfResult
from inbound.trace_fields import remove_fields

FIELD_NAME = "Authentication-Results"
_CTL = re.compile(r"[\x00-\x1f\x7f()\\]")


def build_header(authserv_id: str, spf: SpfResult, dkim: Sequence[DkimResult], dmarc: DmarcResult,
                 arc: ArcResult) -> str:
    """The whole field (``Authentication-Results: …``), folded with CRLF + TAB, without a final CRLF."""
    results: list = [
        authres.SPFAuthenticationResult(
            result=spf.result, result_comment=_comment(spf.explanation),
            smtp_mailfrom=spf.sender if spf.identity == "mailfrom" else None,
            smtp_helo=spf.domain if spf.identity == "helo" else None),
    ]
    if not dkim:
        results.append(authres.DKIMAuthenticationResult(result="none", result_comment="no signatures"))
    for sig in dkim:
        comment = f"{sig.key_bits}-bit key" if sig.key_bits else None
        if sig.reason:
            comment = f"{comment}; {sig.reason}" if comment else sig.reason
        result = authres.DKIMAuthenticationResult(
            result=sig.result, result_comment=_comment(comment), header_d=sig.domain, header_i=sig.identity,
            header_s=sig.selector, header_a=sig.algorithm)
        if sig.b_prefix:
            result.properties.append(authres.core.AuthenticationResultProperty("header", "b", sig.b_prefix[:8]))
        results.append(result)
    dmarc_comment = None
    if dmarc.p:
        dmarc_comment = f"p={dmarc.p} sp={dmarc.sp} pct={dmarc.pct} dis={dmarc.disposition}"
    elif dmarc.reason:
        dmarc_comment = dmarc.reason
    results.append(authres.dmarc.DMARCAuthenticationResult(
        result=dmarc.result, result_comment=_comment(dmarc_comment), header_from=dmarc.domain,
        policy=dmarc.policy))
    arc_comment = None
    if arc.sealers:
        arc_comment = "sealed by " + ", ".join(arc.sealers)
    if arc.reason and arc.result != "pass":
        arc_comment = f"{arc_comment}; {arc.reason}" if arc_comment else arc.reason
    results.append(authres.arc.ARCAuthenticationResult(result=arc.result, result_comment=_comment(arc_comment)))
    parts = [_authserv(authserv_id)] + [str(r) for r in results]
    return f"{FIELD_NAME}: " + ";\r\n\t".join(parts)


def _comment(text: str | None, limit: int = 200) -> str | None:
    """Text safe inside an RFC 5322 comment: no parentheses, backslashes or control characters."""
    if not text:
        return None
    clean = _CTL.sub(" ", text)
    clean = re.sub(r"\s+", " ", clean).strip()
    clean = clean[: limit - 3] + "..." if len(clean) > limit else clean
    return clean.encode("ascii", "replace").decode()


def _authserv(authserv_id: str) -> str:
    return authserv_id.strip().lower()


def strip_own_results(raw: bytes, authserv_id: str) -> bytes:
    """``raw`` without the ``Authentication-Results`` fields whose authserv-id is ``authserv_id``
    (case-insensitive, RFC 8601 §5). Every other byte is kept; returns ``raw`` itself when none."""
    ours = _authserv(authserv_id)
    return remove_fields(raw, {b"authentication-results"}, lambda lines: _id_of_field(lines) == ours)


def _id_of_field(lines: list[bytes]) -> str | None:
    value = b"".join(lines).split(b":", 1)[1]
    return authserv_id_of(value.decode("utf-8", "replace"))


_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")


def authserv_id_of(value: str) -> str | None:
    """The authserv-id of an ``Authentication-Results`` field value (RFC 8601 §2.2), lowercase;
    tolerant of comments, folding and a quoted id. None when there is none."""
    text = re.sub(r"\s+", " ", value)
    previous = None
    while previous != text:  # nested comments, innermost first
        previous, text = text, _COMMENT.sub(" ", text)
    text = text.strip()
    if text.startswith('"'):
        match = re.match(r'"((?:[^"\\]|\\.)*)"', text)
        return match.group(1).replace("\\", "").strip().lower() if match else None
    match = re.match(r"[^\s;]+", text)
    return match.group(0).lower() if match else None
