"""``parse(raw) -> ParsedMessage``: MIME structure with flanker, read from the bytes; the top-level
header with the stdlib.

Who does what:

- :mod:`parser.mime_tokens` (ours, the only structure code we own): finds the lines flanker's
  tokenizer stops at (``Content-Type`` fields, ``--`` lines, empty lines) at ``bytes.find`` speed,
  builds flanker's own tokens from them, and hands flanker a line stream over the bytes in place of
  the text copy and ``StringIO`` it would make. Checked token for token and tree for tree against
  flanker's own reading (tests/test_parser_structure.py).
- flanker: which lines are real boundaries and Content-Types, the part tree (its recursive-descent
  parser), each part's header fields and parameters (RFC 2045, RFC 2231), file names,
  dispositions, Content-ID.
- the stdlib ``email`` package: the top-level header (:mod:`parser.headers`), file names flanker
  decodes with the wrong charset, and the whole structure of a message flanker refuses.
- this module: part bodies transfer-decoded from memoryview slices of the message (an encoded body
  is never copied), charset decoding (:mod:`parser.charsets`), the body/attachment rules below,
  the limits.

Never raises on message content: a message flanker cannot read is walked with the stdlib ``email``
package instead (re-splitting a multipart whose declared boundary never occurs at the one it really
uses, and reading a multipart with no parts as text), and whatever could not be read is named in
``parse_errors``. Limits (:mod:`parser.limits`) bound parts, depth and header fields.

Memory: the message is never copied whole, so beside ``raw`` a parse holds little more than the
decoded parts (about 0.75× the size of a base64 attachment): "decoding never loads more than the
message into memory twice" (issue 4; tests/test_parser_fuzz.py measures it).

Body rules: every ``text/plain`` and ``text/html`` part that is not an attachment (no filename, no
``Content-Disposition: attachment``) is body; parts of the same kind are joined in order. Every other
leaf part is an attachment: inline images keep ``content_id`` and ``disposition: inline``,
``text/calendar`` invites, TNEF ``winmail.dat``, S/MIME and PGP signature and encrypted parts are kept
byte for byte (transfer-decoded); ``message/rfc822`` is one attachment (the enclosed message is not
walked into) with a ``forwarded`` summary of its own header.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from email import message_from_bytes, message_from_string
from email.message import Message as StdMessage
from email.policy import compat32
from io import BytesIO

from parser.automated import classify
from parser.charsets import decode_text
from parser.forward import forwarded_summary
from parser.headers import decode_value, first_msg_id, parse_addresses, parse_date, parse_msg_ids, read_headers
from parser.limits import MAX_DEPTH, MAX_HEADERS, MAX_PARTS, MAX_STRUCTURE_LINES, structure_cut
from parser.mime_tokens import Tokens, parse_tree, tokenize
from parser.model import Attachment, ParsedMessage
from parser.reply import extract_html, extract_text
from parser.threads import thread_key

log = logging.getLogger(__name__)

_MESSAGE_TYPES = ("message/rfc822", "message/global")


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


class _Walk:
    """What a walk collected, and whether it hit a limit."""

    def __init__(self) -> None:
        self.leaves: list[_Leaf] = []
        self.too_deep = False
        self.too_many = False

    def full(self) -> bool:
        if len(self.leaves) >= MAX_PARTS:
            self.too_many = True
            return True
        return False


def parse(raw: bytes) -> ParsedMessage:
    """Parse one message. ``raw``: the bytes as received (CRLF, bare LF or mixed).

    Returns a :class:`ParsedMessage` (picklable); never raises for bad input: what could not be read
    is listed in ``parse_errors``. Sources: RFC 5322 (header), RFC 2045-2049 (MIME), RFC 2231
    (parameters), RFC 6532 (UTF-8 header); the structure comes from flanker, else the stdlib."""
    raw = bytes(raw)
    sha = hashlib.sha256(raw).hexdigest()
    errors: list[str] = []
    try:
        raw_headers = read_headers(raw)
    except Exception as exc:  # noqa: BLE001 - the stdlib header parser on hostile bytes
        errors.append(f"headers: {type(exc).__name__}: {exc}")
        raw_headers = []
    if len(raw_headers) > MAX_HEADERS:
        errors.append(f"limits: more than {MAX_HEADERS} header fields; the rest were ignored")
        raw_headers = raw_headers[:MAX_HEADERS]
    msg = ParsedMessage(size=len(raw), sha256=sha, headers=[(n, decode_value(v)) for n, v in raw_headers],
                        parse_errors=errors)
    _read_structured_headers(msg, raw_headers)

    walk, cut = _walk(raw, errors)
    if walk.too_deep:
        errors.append(f"limits: MIME nesting deeper than {MAX_DEPTH} levels; deeper parts were ignored")
    if walk.too_many and cut is None:
        errors.append(f"limits: more than {MAX_PARTS} parts; the rest were ignored")

    texts: list[str] = []
    htmls: list[str] = []
    for leaf in walk.leaves:
        if _is_body(leaf):
            (texts if leaf.content_type == "text/plain" else htmls).append(leaf.text or "")
        else:
            msg.attachments.append(_attachment(leaf))
    del walk  # the body parts' bytes and text: only the joined bodies below are kept
    # JSON consumers get one line ending: "\n" (the exact bytes stay available at raw_url).
    msg.text = _lf("\n".join(texts)) if texts else None
    del texts
    msg.html = _lf("\n".join(htmls)) if htmls else None
    del htmls
    reply = extract_text(msg.text)
    msg.extracted_text = reply.text
    msg.extracted_signature = reply.signature
    msg.extracted_html = extract_html(msg.html).html
    msg.thread_key = thread_key(msg.message_id, msg.in_reply_to, msg.references)
    msg.auto_submitted = classify(raw_headers, _top_content_type(raw_headers))
    return msg


def _walk(raw: bytes, errors: list[str]) -> tuple[_Walk, int | None]:
    """The leaves of ``raw`` and where its MIME structure was cut (None: read whole).

    flanker reads the structure from our byte tokenizer (:mod:`parser.mime_tokens`); when it
    refuses the message the stdlib reads it instead. Both see the message only up to the structure
    limit (:data:`parser.limits.MAX_STRUCTURE_LINES`)."""
    found = tokenize(raw, MAX_STRUCTURE_LINES)
    cut = found.end if found.end < len(raw) else None
    if cut is not None:
        errors.append(f"limits: more than {MAX_PARTS} parts; the MIME structure was read up to byte {cut}")
    try:
        return _walk_flanker(raw, found), cut
    except Exception as exc:  # noqa: BLE001 - flanker raises many types on broken MIME
        errors.append(f"mime: flanker could not parse the message ({type(exc).__name__}: {exc}); "
                      "read with the stdlib parser")
    if cut is not None:
        raw = raw[:cut]  # a copy, on hostile input only: the stdlib parser takes whole bytes
    for attempt in (raw, raw[: structure_cut(raw, 200) or len(raw)]):
        try:
            return _walk_stdlib(attempt), cut
        except RecursionError:
            errors.append("limits: the stdlib parser ran out of stack; read again up to 200 parts")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"mime: unreadable ({type(exc).__name__}: {exc})")
            break
    return _Walk(), cut


def _top_content_type(raw_headers: list[tuple[str, str]]) -> str | None:
    value = next((v for n, v in raw_headers if n.lower() == "content-type"), None)
    if value is None:
        return None
    return value.split(";")[0].strip().lower() or None


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


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


def _attachment(leaf: _Leaf) -> Attachment:
    disposition = leaf.disposition if leaf.disposition in ("attachment", "inline") else (
        "inline" if leaf.content_id else "attachment")
    content_sha = hashlib.sha256(leaf.payload).hexdigest()
    # The id depends on the part and its content only, not on the whole message: the stored copy
    # carries our trace fields on top, and the web role re-parses it to serve the attachment.
    att_id = "att_" + hashlib.sha256(f"{leaf.part}:{content_sha}".encode()).hexdigest()[:24]
    forwarded = forwarded_summary(leaf.payload) if leaf.content_type in _MESSAGE_TYPES else None
    return Attachment(id=att_id, filename=leaf.filename, content_type=leaf.content_type, size=len(leaf.payload),
                      disposition=disposition, content_id=leaf.content_id, sha256=content_sha, part=leaf.part,
                      content=leaf.payload, forwarded=forwarded)


def _clean_cid(value: str | None) -> str | None:
    if not value:
        return None
    value = str(value).strip()
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


# What a lenient base64 reader drops: every byte but the alphabet (``str.isalnum`` of the byte read
# as latin-1, as before, plus ``+`` and ``/``).
_NOT_BASE64 = bytes(c for c in range(256) if not (chr(c).isalnum() or c in b"+/"))


def _transfer_decode(cte: str | None, body: bytes | memoryview) -> bytes:
    """RFC 2045 §6: base64 and quoted-printable decoded; 7bit, 8bit, binary and unknown values as is.

    ``body`` may be a memoryview into the message: binascii decodes it in place, so an encoded
    body is never copied; the result is always new ``bytes``."""
    cte = (cte or "7bit").strip().lower()
    if cte == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            # Lenient, as receivers are: keep the alphabet only, drop a dangling sixth-bit
            # character, and pad to a multiple of four.
            cleaned = bytes(body).translate(None, _NOT_BASE64)
            if len(cleaned) % 4 == 1:
                cleaned = cleaned[:-1]
            return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4)) if cleaned else b""
    if cte == "quoted-printable":
        return _qp_decode(body)
    return bytes(body)


_QP_CHUNK = 1 << 20


def _qp_decode(body: bytes | memoryview, chunk: int = _QP_CHUNK) -> bytes:
    """Quoted-printable (RFC 2045 §6.7) decoded in pieces of about 1 MiB cut after a line break:
    ``binascii.a2b_qp`` allocates a scratch buffer as large as its input, so decoding a big body in
    one call would hold the body's size twice. Every QP escape and soft line break ends within its
    line, so the pieces decode exactly as the whole does."""
    if len(body) <= chunk:
        return binascii.a2b_qp(body)
    view = memoryview(body)
    out = BytesIO()
    start, n = 0, len(view)
    while start < n:
        stop = min(n, start + chunk)
        if stop < n:
            lf = _find_lf(view, stop)
            stop = n if lf < 0 else lf + 1
        out.write(binascii.a2b_qp(view[start:stop]))
        start = stop
    return out.getvalue()


def _find_lf(view: memoryview, pos: int) -> int:
    """The offset of the first LF at or after ``pos`` in ``view``, or -1 (memoryview has no find)."""
    m = _LF_RE.search(view, pos)
    return m.start() if m else -1


_LF_RE = re.compile(rb"\n")


def _latin1_to_text(value: str) -> str:
    """A header value flanker read from our latin-1 view of the bytes: raw UTF-8 (RFC 6532) is
    re-read as UTF-8; anything else (encoded-words flanker decoded) is kept."""
    try:
        data = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    if data.isascii():
        return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return value


# flanker ---------------------------------------------------------------------------------------

def _walk_flanker(raw: bytes, found: Tokens) -> _Walk:
    # The tree's offsets are byte offsets into ``raw`` (parser.mime_tokens reads it as latin-1, one
    # character per byte), so bodies are sliced from the bytes.
    root = parse_tree(raw, found)
    walk = _Walk()
    _flanker_visit(root, "", walk, 0, raw)
    return walk


def _flanker_visit(part, number: str, walk: _Walk, depth: int, raw: bytes) -> None:
    if depth > MAX_DEPTH:
        walk.too_deep = True
        return
    if walk.full():
        return
    ctype = part.content_type
    if ctype.is_multipart():
        for i, child in enumerate(part.parts, start=1):
            _flanker_visit(child, f"{number}.{i}" if number else str(i), walk, depth + 1, raw)
        return
    number = number or "1"  # RFC 3501 §6.4.5: a non-multipart message's only part is 1
    content_type = f"{ctype.main}/{ctype.sub}".lower()
    disposition, _params = part.content_disposition
    cte = part.headers.get("Content-Transfer-Encoding")
    stream = part._container  # flanker's Stream: offsets of this part in the scanned string
    stream._load_headers()
    undecoded = memoryview(raw)[stream._body_start:stream.end + 1]
    payload = _transfer_decode(getattr(cte, "value", cte), undecoded)
    charset = ctype.params.get("charset")
    filename = _latin1_to_text(part.detected_file_name or "") or None
    if filename and ("\ufffd" in filename or "=?" in filename):
        filename = _stdlib_filename(raw[stream.start:stream._body_start]) or filename
    walk.leaves.append(_Leaf(
        part=number, content_type=content_type, charset=charset, filename=filename,
        disposition=(disposition or None), content_id=_clean_cid(part.headers.get("Content-Id")),
        payload=payload, text=decode_text(payload, charset) if ctype.main == "text" else None,
    ))


def _stdlib_filename(header_block: bytes) -> str | None:
    """The filename as the stdlib reads it (RFC 2231 with its charset; RFC 2047 words decoded), for
    the names flanker decodes with the wrong charset."""
    try:
        name = message_from_bytes(header_block + b"\r\n", policy=compat32).get_filename()
    except Exception:  # noqa: BLE001 - best effort; flanker's reading stays
        return None
    if not name:
        return None
    name = decode_value(name)
    return None if "\ufffd" in name else name


# stdlib fallback -------------------------------------------------------------------------------

_BOUNDARY_LINE_RE = re.compile(r"^--([^\s]{1,200}?)(--)?[ \t]*$", re.M)
_HEADER_LINE_RE = re.compile(r"^[!-9;-~]+[ \t]*:", re.M)


def _walk_stdlib(raw: bytes) -> _Walk:
    root = message_from_bytes(raw, policy=compat32)
    walk = _Walk()
    _stdlib_visit(root, "", walk, 0)
    return walk


def _resplit(part: StdMessage) -> list[StdMessage] | None:
    """A multipart whose declared boundary never occurs: split it at the boundary the body really
    uses (the first ``--token`` line followed by a header line), as lenient readers do."""
    body = part.get_payload()
    if not isinstance(body, str):
        return None
    for m in _BOUNDARY_LINE_RE.finditer(body):
        after = body[m.end():].lstrip("\r\n")
        if not _HEADER_LINE_RE.match(after):
            continue
        token = re.escape("--" + m.group(1))
        chunks = re.split(rf"(?m)^{token}(?:--)?[ \t]*\r?$\n?", body[m.start():])
        children = [message_from_string(c, policy=compat32) for c in chunks[1:] if c.strip()]
        return children or None
    return None


def _body_bytes(part: StdMessage, content_type: str) -> bytes:
    """The transfer-decoded body of a leaf, also for message/* parts the stdlib parsed into objects."""
    if part.is_multipart():
        inner = part.get_payload()
        if content_type in _MESSAGE_TYPES:
            return inner[0].as_bytes() if inner else b""
        return b"\n".join(m.as_bytes() for m in inner if isinstance(m, StdMessage))
    return part.get_payload(decode=True) or b""


def _stdlib_visit(part: StdMessage, number: str, walk: _Walk, depth: int) -> None:
    if depth > MAX_DEPTH:
        walk.too_deep = True
        return
    if walk.full():
        return
    content_type = part.get_content_type().lower()
    if content_type.startswith("multipart/"):
        children = part.get_payload() if part.is_multipart() else _resplit(part)
        if children:
            for i, child in enumerate(children, start=1):
                _stdlib_visit(child, f"{number}.{i}" if number else str(i), walk, depth + 1)
            return
        body = part.get_payload(decode=True) or b""
        if not body.strip():
            return  # a multipart with neither parts nor text: nothing to report
        # A multipart without a usable boundary: its body is text (never drop text).
        content_type = "text/plain"
    number = number or "1"
    payload = _body_bytes(part, content_type)
    charset = part.get_content_charset()
    text = decode_text(payload, charset) if content_type.startswith("text/") else None
    filename = part.get_filename()
    walk.leaves.append(_Leaf(
        part=number, content_type=content_type, charset=charset,
        filename=decode_value(filename) if filename else None,
        disposition=part.get_content_disposition(),
        content_id=_clean_cid(part.get("Content-ID")), payload=payload, text=text,
    ))
