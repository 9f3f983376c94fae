"""Header fields: the ordered list as sent, unfolded and RFC 2047 decoded, plus the structured
fields read from it (addresses, Date, Message-ID, References).

Header names keep the spelling of the message (``Message-ID``, not a normalised ``Message-Id``).
Values: unfolded (RFC 5322 §2.2.3), encoded-words decoded (RFC 2047 §6), raw 8-bit bytes read as
UTF-8 (RFC 6532) with a Windows-1252 fallback.
"""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import re
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32

from parser.charsets import decode_text
from parser.model import Address

_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
# RFC 5322 §2.1.1: a line is at most 998 characters, so a longer msg-id cannot be real (and would
# not fit the store's columns); such tokens are ignored.
MAX_MSGID_CHARS = 998
_MSGID_RE = re.compile(r"<[^<>\s]{1,996}>(?![^<>\s]*>)")
_HEADER_PARSER = BytesHeaderParser(policy=compat32)
# A body boundary: the first empty line (CRLF CRLF, or bare-LF variants).
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


def split_header_block(raw: bytes) -> tuple[bytes, bytes]:
    """Split ``raw`` into (header block, body) at the first empty line; the body may be empty."""
    m = _HEADER_END_RE.search(raw)
    if m is None:
        return raw, b""
    return raw[: m.start()], raw[m.end():]


def _bytes_to_str(value: str) -> str:
    """compat32 hands raw 8-bit header bytes over as surrogate escapes: read them as UTF-8 (RFC 6532),
    else Windows-1252 (the usual mislabelled legacy charset)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("ascii", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_value(value: str) -> str:
    """Unfold a raw header value and decode its RFC 2047 encoded-words (never raises)."""
    value = _bytes_to_str(_FOLD_RE.sub("", value)).strip()
    if "=?" not in value:
        return value
    try:
        pieces = email.header.decode_header(value)
    except (ValueError, email.errors.HeaderParseError):
        return value
    # Unknown or wrong charset labels (``=?NONE?B?…?=``) fall back as bodies do (parser.charsets).
    out = [chunk if isinstance(chunk, str) else decode_text(chunk, charset) for chunk, charset in pieces]
    return "".join(out)


def read_headers(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of ``raw`` in order, as ``(name, raw unfolded value)`` pairs (not decoded)."""
    m = _HEADER_END_RE.search(raw)
    block = raw[: m.start()] if m else raw  # the header block only: the body is never copied
    msg = _HEADER_PARSER.parsebytes(block + b"\r\n\r\n", headersonly=True)
    return [(name, str(val)) for name, val in msg.raw_items()]


def parse_addresses(raw_values: list[str]) -> list[Address]:
    """Addresses from one or more raw address-list values (To, Cc, …), in order; groups flattened.

    Parsing happens on the raw value so that a comma inside an encoded display name cannot split an
    address; display names are decoded afterwards.
    """
    out: list[Address] = []
    unfolded = [_bytes_to_str(_FOLD_RE.sub("", v)) for v in raw_values]
    for name, addr in email.utils.getaddresses(unfolded):
        addr = addr.strip()
        if not addr:
            continue
        out.append(Address(decode_value(name) if name else "", addr))
    return out


def parse_date(raw_value: str | None) -> datetime | None:
    """The Date header as an aware datetime (UTC when the zone is missing or ``-0000``); None if unreadable."""
    if not raw_value:
        return None
    try:
        value = email.utils.parsedate_to_datetime(_FOLD_RE.sub("", raw_value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def parse_msg_ids(raw_value: str | None) -> list[str]:
    """The ``<id@host>`` tokens of a Message-ID, In-Reply-To or References value (RFC 5322 §3.6.4)."""
    if not raw_value:
        return []
    return _MSGID_RE.findall(_FOLD_RE.sub("", raw_value))


def first_msg_id(raw_value: str | None) -> str | None:
    """The first msg-id in a value; a bare id without angle brackets is accepted and bracketed."""
    ids = parse_msg_ids(raw_value)
    if ids:
        return ids[0]
    value = (raw_value or "").strip()
    if value and " " not in value and "@" in value and len(value) <= MAX_MSGID_CHARS - 2:
        return f"<{value.strip('<>')}>"
    return None
