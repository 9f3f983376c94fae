"""DKIM verification (RFC 6376; ed25519-sha256 per RFC 8463) with dkimpy's lower-level API.

``dkim.verify()`` folds every problem into ``False``; we need the RFC 8601 result words instead, so
each signature goes through dkimpy's steps one by one and each step's failure gets its own verdict:

- signature header syntax, missing or bad tags, expired ``x=`` (``verify_headerprep``) → ``permerror``
- no key record (NXDOMAIN / no TXT at ``s._domainkey.d``), unparsable or revoked key (empty ``p=``),
  key type not matching ``a=`` (RFC 6376 §6.1.2) → ``permerror``
- DNS timeout or server failure fetching the key → ``temperror``
- ``rsa-sha1`` (historic, RFC 8301 §3.1) or an RSA key under 1024 bits (RFC 8301 §3.2) → ``policy``
- body hash mismatch or a signature that does not verify (``verify_sig_process``) → ``fail``

Keys come from our resolver through a :class:`BlockingLookup` (prefetched concurrently); dkimpy's
own DNS is never used. Blocking and CPU-bound (hashing, RSA): run in a worker thread.
"""

from __future__ import annotations

import binascii
import logging
import re

import dkim as dkimpy
from dkim.util import InvalidTagValueList, parse_tag_value

from inbound.auth.results import DkimResult
from inbound.dns import BlockingLookup, DnsError

log = logging.getLogger("mailkite.auth.dkim")
# dkimpy logs each failure at ERROR; our verdicts already carry the reason, so keep it quiet.
DKIMPY_LOG = logging.getLogger("mailkite.auth.dkimpy")
DKIMPY_LOG.setLevel(logging.CRITICAL)

MAX_SIGNATURES = 10  # RFC 6376 §6.1: verifiers MAY limit the signatures they check; the rest are reported
MIN_RSA_BITS = 1024  # RFC 8301 §3.2
SIGNED_HEADERS = (b"dkim-signature", b"arc-seal", b"arc-message-signature")
_HAS_SIGNATURE = re.compile(rb"^(dkim-signature|arc-seal|arc-message-signature)[ \t]*:", re.I | re.M)


def signature_fields(raw: bytes) -> set[str]:
    """Cheap pre-check: which of ``dkim-signature``, ``arc-seal``, ``arc-message-signature`` the
    header block holds (lowercase names); empty for an unsigned message."""
    return {m.group(1).decode().lower() for m in _HAS_SIGNATURE.finditer(_header_block(raw))}


def _header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end != -1:
            return raw[: end + len(sep) // 2]
    return raw


def parse_message(raw: bytes) -> dkimpy.DKIM | None:
    """dkimpy's parsed view of ``raw`` (headers and body), None when it cannot parse it."""
    try:
        return dkimpy.DKIM(raw, minkey=MIN_RSA_BITS, logger=DKIMPY_LOG)
    except (dkimpy.DKIMException, IndexError, ValueError):
        # dkimpy's rfc822_parse raises IndexError when the first line is a continuation line.
        return None


def key_names(message: dkimpy.DKIM) -> list[str]:
    """The key record names (``selector._domainkey.domain``) every DKIM and ARC signature of the
    message refers to, for prefetching."""
    names = []
    for name, value in message.headers:
        if name.lower() in SIGNED_HEADERS:
            tags = _tags(value)
            if tags.get("s") and tags.get("d"):
                names.append(f"{tags['s']}._domainkey.{tags['d']}")
    return names[: 2 * MAX_SIGNATURES + 100]


def verify_dkim(message: dkimpy.DKIM, lookup: BlockingLookup) -> tuple[DkimResult, ...]:
    """Verify every ``DKIM-Signature`` of ``message`` (topmost first). Blocking; never raises.

    Returns one :class:`DkimResult` per signature (at most :data:`MAX_SIGNATURES` verified; further
    ones are reported ``neutral``); an empty tuple for an unsigned message.
    """
    count = sum(1 for name, _ in message.headers if name.lower() == b"dkim-signature")
    results = []
    for idx in range(count):
        if idx >= MAX_SIGNATURES:
            results.append(_describe(message, idx, "neutral", f"not checked: more than {MAX_SIGNATURES} signatures"))
            continue
        try:
            results.append(_verify_one(message, idx, lookup))
        except Exception as exc:  # noqa: BLE001 - a dkimpy defect must not fail the transaction
            log.exception("dkim.internal_error")
            results.append(_describe(message, idx, "temperror", f"verification failed: {exc.__class__.__name__}"))
    return tuple(results)


def _verify_one(message: dkimpy.DKIM, idx: int, lookup: BlockingLookup) -> DkimResult:
    try:
        sig, include_headers, sigheaders = message.verify_headerprep(idx)
    except dkimpy.DKIMException as exc:
        return _describe(message, idx, "permerror", f"bad signature field: {exc}")
    algorithm = sig[b"a"].decode("ascii", "replace").lower()
    if algorithm == "rsa-sha1":
        return _describe(message, idx, "policy", "rsa-sha1 is historic and not accepted (RFC 8301 §3.1)")
    name = f"{_text(sig[b's'])}._domainkey.{_text(sig[b'd'])}"
    try:
        answer = lookup.query(name, "TXT")
    except DnsError as exc:
        return _describe(message, idx, "temperror", f"key lookup failed: {exc}")
    if not answer.records:
        return _describe(message, idx, "permerror", f"no key record at {name}")
    record = answer.records[0].encode("utf-8")
    try:
        pk, keysize, ktag, seqtlsrpt = dkimpy.evaluate_pk(name.encode(), record)
    except (dkimpy.DKIMException, binascii.Error, ValueError) as exc:
        reason = "key revoked (empty p=)" if _tags(record).get("p", None) == "" else f"unusable key: {exc}"
        return _describe(message, idx, "permerror", reason)
    if ktag.decode() != algorithm.split("-", 1)[0]:
        return _describe(message, idx, "permerror", f"key type {ktag.decode()} does not match a={algorithm}")
    if ktag == b"rsa" and keysize < MIN_RSA_BITS:
        return _describe(message, idx, "policy", f"RSA key of {keysize} bits is too small (RFC 8301 §3.2)",
                         keysize)
    message.pk, message.keysize, message.ktag, message.seqtlsrpt = pk, keysize, ktag, seqtlsrpt
    try:
        valid = message.verify_sig_process(sig, include_headers, sigheaders[idx], None)
    except dkimpy.ValidationError as exc:
        text = str(exc)
        if text.startswith("body hash mismatch"):
            return _describe(message, idx, "fail", "body hash mismatch", keysize)
        return _describe(message, idx, "permerror", text, keysize)
    except dkimpy.DKIMException as exc:
        return _describe(message, idx, "permerror", str(exc), keysize)
    if not valid:
        return _describe(message, idx, "fail", "signature did not verify", keysize)
    return _describe(message, idx, "pass", None, keysize)


def _describe(message: dkimpy.DKIM, idx: int, result: str, reason: str | None,
              key_bits: int | None = None) -> DkimResult:
    value = [v for n, v in message.headers if n.lower() == b"dkim-signature"][idx]
    tags = _tags(value)
    b = re.sub(r"\s+", "", tags.get("b") or "")
    return DkimResult(result=result, domain=(tags.get("d") or "").lower() or None, selector=tags.get("s") or None,
                      algorithm=(tags.get("a") or "").lower() or None, identity=tags.get("i") or None,
                      reason=reason, key_bits=key_bits, b_prefix=b[:12] or None)


def _tags(value: bytes) -> dict[str, str]:
    """Tag=value pairs of a signature or key field, as text; empty when unparsable."""
    try:
        return {_text(k): re.sub(r"\s+", "" if k in (b"b", b"bh", b"p") else " ", _text(v)).strip()
                for k, v in parse_tag_value(value).items()}
    except (InvalidTagValueList, ValueError, TypeError):
        return {}


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
