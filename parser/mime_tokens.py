"""flanker's MIME structure parser, fed from the raw bytes instead of a text copy of the message.

flanker (``flanker.mime.from_string``) reads structure in two steps: a tokenizer runs one regular
expression over the whole message as text to find the lines that can matter (``Content-Type:``
fields, ``--`` lines, empty lines), then a recursive-descent parser (``scanner.traverse``) builds
the part tree from those tokens, and each part reads its header fields lazily from a ``StringIO``
of the message. On a message with a few megabytes of base64 that costs a text copy of the message
(one byte per byte, since we decode latin-1), a ``StringIO`` of it (four bytes per byte in
CPython) and a regular-expression step at every character: about 7× the message in memory and
most of the parse time.

This module produces the very same tokens from the bytes (a ``bytes.find``-speed search for line
starts that can be tokens, then flanker's own rules applied at each), and gives flanker's parser a
read-only line stream over the bytes (:class:`ByteLines`) in place of the ``StringIO``. The tree
flanker builds is then the one it always built (same parts, same offsets: one character per byte),
its header parsing is flanker's, and part bodies are sliced from the bytes by the caller. Only
the token search is ours; token meaning, structure, headers and errors stay flanker's.

:func:`parse_tree` raises what ``flanker.mime.from_string`` raises (flanker's ``DecodingError``
and whatever its header parser raises on hostile bytes); callers translate at their edge
(``parser.mime``).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from flanker.mime.message import scanner
from flanker.mime.message.errors import DecodingError
from flanker.mime.message.headers import parsing

_LF, _CR = 0x0A, 0x0D

_CONTENT_TYPE = rb"[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Tt][Yy][Pp][Ee]"
# What may begin a line that is a token or a structure line: ``--``, an empty line, or a
# Content-Type field name (any case; blanks before the colon only count for structure lines,
# parser.limits). Searched as LF + lookahead: the literal LF keeps the search at C speed through
# base64 bodies (about 1.5 GB/s here, where flanker's tokenizer reads ~40 MB/s).
_TOKEN_START = rb"--|\r?\n|" + _CONTENT_TYPE + rb"[ \t]*:"
_CANDIDATE = re.compile(rb"\n(?=" + _TOKEN_START + rb")")
_AT_START = re.compile(_TOKEN_START)
# flanker's ``ctype`` token (scanner._RE_TOKENIZER, case-insensitive): a Content-Type field of
# printable US-ASCII, with folded continuation lines.
_CTYPE = re.compile(_CONTENT_TYPE + rb":[\x21-\x7e \t]+(?:(?:\r\n|\n)[ \t]+[\x20-\x7e \t]+)*")


@dataclass
class Tokens:
    """flanker's filtered token list for ``raw[:end]``; ``end`` < ``len(raw)`` when the message was
    cut at its ``limit``-th structure line (``parser.limits``). ``error``: what flanker's field
    parser raised on a Content-Type token (the tokens are then incomplete, as flanker's tokenizer
    would have raised), else None."""

    tokens: list
    end: int
    error: Exception | None = None


def tokenize(raw: bytes, limit: int) -> Tokens:
    """The tokens ``flanker.mime.message.scanner.tokenize`` finds in ``raw`` read as latin-1.

    Counts structure lines as it goes (a line starting with ``--`` or ``Content-Type:``, blanks
    allowed before the colon: ``parser.limits.MAX_STRUCTURE_LINES``); at the ``limit``-th one it
    stops, and the tokens are those of the message up to that line (``Tokens.end``). Never raises:
    a Content-Type token flanker cannot parse is reported in ``Tokens.error`` and the count goes on,
    so the cut is known whatever happens."""
    tokens: list = []
    error: Exception | None = None
    structure = 0
    end = len(raw)
    for pos in _line_starts(raw):
        first = raw[pos]
        if first == 0x2D or first not in (_LF, _CR):
            structure += 1
            if structure >= limit:
                end = pos
                break
        if first == 0x2D:
            line_end = raw.find(b"\n", pos)
            if line_end < 0:
                line_end = len(raw)
            value = raw[pos:line_end].decode("latin-1").strip("\t\r\n")
            tokens.append(scanner.Boundary(value, _grab_newline(raw, pos, -1), _grab_newline(raw, line_end, 1)))
        elif first in (_LF, _CR):
            tokens.append(scanner._EMPTY_LINE)
        elif error is None:
            m = _CTYPE.match(raw, pos)
            if m is not None:
                try:
                    tokens.append(parsing.parse_header(m.group().decode("ascii"))[1])
                except Exception as exc:  # noqa: BLE001 - flanker's tokenizer would raise it
                    error = exc
    if error is not None:
        return Tokens([], end, error)
    return Tokens(scanner._filter_false_tokens(tokens), end)


def _line_starts(raw: bytes):
    """Offsets of the line starts where a token may begin, in order."""
    if _AT_START.match(raw):
        yield 0
    for m in _CANDIDATE.finditer(raw):
        yield m.end()


def _grab_newline(raw: bytes, position: int, direction: int) -> int:
    """flanker's ``scanner._grab_newline`` over bytes: where the line break before (``-1``) or
    after (``1``) a boundary line starts (CR LF counts from its CR when looking back)."""
    n = len(raw)
    while 0 < position < n:
        if raw[position] == _LF:
            if direction < 0 and position - 1 > 0 and raw[position - 1] == _CR:
                return position - 1
            return position
        position += direction
    return position


class ByteLines:
    """The part of ``io.StringIO`` flanker's parser uses (``seek``, ``tell``, line iteration,
    ``read``), over bytes read as latin-1: one character per byte, so positions are byte offsets.
    Lines end at LF only, as ``StringIO``'s default ``newline="\\n"`` reads them."""

    __slots__ = ("raw", "end", "pos")

    def __init__(self, raw: bytes, end: int) -> None:
        self.raw = raw
        self.end = end
        self.pos = 0

    def seek(self, pos: int) -> int:
        pos = operator.index(pos)  # a TypeError for None, as StringIO.seek raises
        if pos < 0:
            raise ValueError(f"Negative seek position {pos}")
        self.pos = pos
        return pos

    def tell(self) -> int:
        return self.pos

    def __iter__(self) -> "ByteLines":
        return self

    def __next__(self) -> str:
        if self.pos >= self.end:
            raise StopIteration
        lf = self.raw.find(b"\n", self.pos, self.end)
        stop = self.end if lf < 0 else lf + 1
        line = self.raw[self.pos:stop].decode("latin-1")
        self.pos = stop
        return line

    def read(self, size: int = -1) -> str:
        stop = self.end if size is None or size < 0 else min(self.end, self.pos + size)
        text = self.raw[self.pos:stop].decode("latin-1")
        self.pos = max(self.pos, stop)
        return text


class _Iterator(scanner.TokensIterator):
    """flanker's token iterator with :class:`ByteLines` for its ``StringIO`` of the message."""

    def __init__(self, tokens: list, raw: bytes, end: int) -> None:
        # The attributes TokensIterator.__init__ sets, without its StringIO copy of the message.
        self.position = -1
        self.tokens = tokens
        self.string = _Length(end)
        self.stream = ByteLines(raw, end)
        self.opcount = 0


class _Length:
    """Stands for the message text where flanker only asks its length (``make_part`` and
    ``Stream.size``; ``MimePart.to_string``, which would need the text, is never called on these
    trees: parse() only reads them)."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def parse_tree(raw: bytes, found: Tokens):
    """The flanker ``MimePart`` tree of ``raw[:found.end]`` from its tokens (:func:`tokenize`): what
    ``flanker.mime.from_string(raw[:found.end].decode("latin-1"))`` returns, without the text copy.

    Raises what ``from_string`` raises: flanker's ``DecodingError``, and the tokenizer's error."""
    if found.error is not None:
        raise found.error
    tokens = found.tokens or [scanner.default_content_type()]
    iterator = _Iterator(tokens, raw, found.end)
    try:
        return scanner.traverse(scanner.Start(), iterator)
    except DecodingError:
        raise
    except Exception as cause:  # noqa: BLE001 - as flanker's scanner.scan translates them
        raise DecodingError("Malformed MIME message") from cause
