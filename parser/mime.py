"""``parse(raw) -> ParsedMessage``: MIME structure with flanker, headers with the stdlib.

Never raises on message content: a message flanker cannot read is walked with the stdlib ``email``
package instead, and whatever could not be read is named in ``parse_errors``.

Body rules: every ``text/plain`` and ``text/html`` part that is not an attachment (no filename, no
``Content-Disposition: attachment``) is body; parts of the same kind are joined in order. Every other
leaf part is an attachment; ``message/rfc822`` is one attachment (the enclosed message is not
walked into).
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import quopri
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message as StdMessage
from email.policy import compat32

from parser.charsets import bytes_from_surrogates, decode_text
from parser.headers import decode_value, first_msg_id, parse_addresses, parse_date, parse_msg_ids, read_headers
from parser.model import Attachment, ParsedMessage
from parser.reply import extract_html, extract_text
from parser.threads import thread_key

log = logging.getLogger(__name__)

MAX_PARTS = 1000
MAX_DEPTH = 50


@dataclass
class _Leaf:
    """A leaf part as both walkers report it."""

    part: str
    content_type: str
    charset: str | None
    filename: str | None
    disposition: str | None
    content_id: str | None
    payload: bytes          # transfer-decoded
    text: str | None        # charset-decoded for text/* parts


def parse(raw: bytes) -> ParsedMessage:
    """Parse one message. ``raw``: the bytes as received (CRLF or LF). Never raises for bad input."""
    sha = hashlib.sha256(raw).hexdigest()
    errors: list[str] = []
    try:
        raw_headers = read_headers(raw)
    except Exception as exc:  # noqa: BLE001 - the stdlib header parser on hostile bytes
        errors.append(f"headers: {type(exc).__name__}: {exc}")
        raw_headers = []
    msg = ParsedMessage(size=len(raw), sha256=sha, headers=[(n, decode_value(v)) for n, v in raw_headers],
                        parse_errors=errors)
    _read_structured_headers(msg, raw_headers)

    leaves: list[_Leaf] | None = None
    try:
        leaves = _walk_flanker(raw)
    except Exception as exc:  # noqa: BLE001 - flanker raises many types on broken MIME
        errors.append(f"mime: flanker could not parse the message ({type(exc).__name__}: {exc}); read with the stdlib parser")
    if leaves is None:
        try:
            leaves = _walk_stdlib(raw)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"mime: unreadable ({type(exc).__name__}: {exc})")
            leaves = []
    if len(leaves) > MAX_PARTS:
        errors.append(f"mime: more than {MAX_PARTS} parts; the rest were ignored")
        leaves = leaves[:MAX_PARTS]

    texts: list[str] = []
    htmls: list[str] = []
    for leaf in leaves:
        if _is_body(leaf):
            (texts if leaf.content_type == "text/plain" else htmls).append(leaf.text or "")
        else:
            msg.attachments.append(_attachment(sha, leaf))
    msg.text = "\n".join(texts) if texts else None
    msg.html = "\n".join(htmls) if htmls else None
    reply = extract_text(msg.text)
    msg.extracted_text = reply.text
    msg.extracted_signature = reply.signature
    msg.extracted_html = extract_html(msg.html).html
    msg.thread_key = thread_key(msg.message_id, msg.in_reply_to, msg.references)
    return msg


def _read_structured_headers(msg: ParsedMessage, raw_headers: list[tuple[str, str]]) -> None:
    def values(name: str) -> list[str]:
        lname = name.lower()
        return [v for n, v in raw_headers if n.lower() == lname]

    def first(name: str) -> str | None:
        vals = values(name)
        return vals[0] if vals else None

    subject = first("Subject")
    msg.subject = decode_value(subject) if subject is not None else None
    date_value = first("Date")
    msg.date = parse_date(date_value)
    if date_value is not None and msg.date is None:
        msg.parse_errors.append("headers: unreadable Date")
    msg.message_id = first_msg_id(first("Message-ID"))
    msg.in_reply_to = first_msg_id(first("In-Reply-To"))
    msg.references = parse_msg_ids(" ".join(values("References")))
    froms = parse_addresses(values("From"))
    msg.from_ = froms[0] if froms else None
    senders = parse_addresses(values("Sender"))
    msg.sender = senders[0] if senders else None
    msg.to = parse_addresses(values("To"))
    msg.cc = parse_addresses(values("Cc"))
    msg.reply_to = parse_addresses(values("Reply-To"))


def _is_body(leaf: _Leaf) -> bool:
    return (leaf.content_type in ("text/plain", "text/html") and not leaf.filename
            and leaf.disposition != "attachment")


def _attachment(message_sha: str, leaf: _Leaf) -> Attachment:
    disposition = leaf.disposition if leaf.disposition in ("attachment", "inline") else (
        "inline" if leaf.content_id else "attachment")
    att_id = "att_" + hashlib.sha256(f"{message_sha}:{leaf.part}".encode()).hexdigest()[:24]
    return Attachment(id=att_id, filename=leaf.filename, content_type=leaf.content_type, size=len(leaf.payload),
                      disposition=disposition, content_id=leaf.content_id,
                      sha256=hashlib.sha256(leaf.payload).hexdigest(), part=leaf.part, content=leaf.payload)


def _clean_cid(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


def _transfer_decode(cte: str | None, body: bytes) -> bytes:
    cte = (cte or "7bit").strip().lower()
    if cte == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            # Lenient, as receivers are: keep the alphabet only, drop a dangling sixth-bit
            # character, and pad to a multiple of four.
            cleaned = bytes(c for c in body if chr(c).isalnum() or c in b"+/")
            if len(cleaned) % 4 == 1:
                cleaned = cleaned[:-1]
            return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4)) if cleaned else b""
    if cte == "quoted-printable":
        return quopri.decodestring(body)
    return body


# flanker ---------------------------------------------------------------------------------------

def _walk_flanker(raw: bytes) -> list[_Leaf]:
    from flanker import mime

    # flanker scans text; surrogateescape keeps every byte recoverable (read_body().encode below).
    root = mime.from_string(raw.decode("utf-8", "surrogateescape"))
    leaves: list[_Leaf] = []
    _flanker_visit(root, "", leaves, 0)
    return leaves


def _flanker_visit(part, number: str, leaves: list[_Leaf], depth: int) -> None:
    if depth > MAX_DEPTH or len(leaves) > MAX_PARTS:
        return
    ctype = part.content_type
    if ctype.is_multipart():
        for i, child in enumerate(part.parts, start=1):
            _flanker_visit(child, f"{number}.{i}" if number else str(i), leaves, depth + 1)
        return
    number = number or "1"  # RFC 3501 §6.4.5: a non-multipart message's only part is 1
    content_type = f"{ctype.main}/{ctype.sub}".lower()
    disposition, _params = part.content_disposition
    cte = part.headers.get("Content-Transfer-Encoding")
    undecoded = part._container.read_body().encode("utf-8", "surrogateescape")  # flanker's Stream
    payload = _transfer_decode(getattr(cte, "value", cte), undecoded)
    charset = ctype.params.get("charset")
    filename = bytes_from_surrogates(part.detected_file_name or "") or None
    leaves.append(_Leaf(
        part=number, content_type=content_type, charset=charset, filename=filename,
        disposition=(disposition or None), content_id=_clean_cid(part.headers.get("Content-Id")),
        payload=payload, text=decode_text(payload, charset) if ctype.main == "text" else None,
    ))


# stdlib fallback -------------------------------------------------------------------------------

def _walk_stdlib(raw: bytes) -> list[_Leaf]:
    root = message_from_bytes(raw, policy=compat32)
    leaves: list[_Leaf] = []
    _stdlib_visit(root, "", leaves, 0)
    return leaves


def _stdlib_visit(part: StdMessage, number: str, leaves: list[_Leaf], depth: int) -> None:
    if depth > MAX_DEPTH or len(leaves) > MAX_PARTS:
        return
    content_type = part.get_content_type().lower()
    if part.is_multipart() and content_type.startswith("multipart/"):
        for i, child in enumerate(part.get_payload(), start=1):
            _stdlib_visit(child, f"{number}.{i}" if number else str(i), leaves, depth + 1)
        return
    number = number or "1"
    if content_type in ("message/rfc822", "message/global") and part.is_multipart():
        inner = part.get_payload()
        payload = inner[0].as_bytes() if inner else b""
    else:
        payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset()
    text = decode_text(payload, charset) if content_type.startswith("text/") else None
    filename = part.get_filename()
    leaves.append(_Leaf(
        part=number, content_type=content_type, charset=charset,
        filename=decode_value(filename) if filename else None,
        disposition=part.get_content_disposition(),
        content_id=_clean_cid(part.get("Content-ID")), payload=payload, text=text,
    ))
