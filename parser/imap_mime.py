"""A MIME structure scanner over the raw bytes, keeping byte offsets of every part.

``scan(raw) -> MimePart``: the tree of parts with, for each, where its MIME header starts, where
its body starts and where it ends, its header fields, and its kind (multipart, message/rfc822,
text, other). Nothing is decoded or copied beyond the header fields. Works on CRLF, bare-LF and
mixed input; never raises on content.

Rules (RFC 2046 §5.1.1 unless noted):
- A part's header ends at the first empty line; what follows is its body.
- A boundary line starts with ``--`` + the boundary; only the prefix must match (trailing garbage
  after it is tolerated), the innermost boundary is tried first, the longest matching boundary
  wins, and ``--boundary--`` closes its multipart (the rest up to an outer boundary is epilogue).
- The line break before a boundary line belongs to the boundary, not to the part before it.
- A boundary line inside a part's header ends that header (the part has no body); so does a
  boundary line right after the empty line (that line break is the delimiter's).
- Content-* fields count only in MIME entities (a MIME-Version or Content-Type field, or a body
  part of a multipart: RFC 2045 §4); a multipart without a boundary parameter is read as a leaf;
  body parts of multipart/digest default to message/rfc822 (RFC 2046 §5.1.5).
These are the readings Dovecot 2.3 applies (its message-parser), which is what IMAP clients meet;
sizes are counted as IMAP counts them: octets with every bare LF counted as CRLF (RFC 3501 §2.3.4
requires CRLF lines), and lines as the number of LFs.

Bounds: at most :data:`MAX_DEPTH` nested parts and :data:`MAX_PARTS` parts; past them the rest is
one opaque leaf (no exception).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parser.imap_rfc822 import ContentType, parse_content_type

MAX_DEPTH = 100
MAX_PARTS = 10_000
MAX_BOUNDARY = 80            # boundaries are cut to this many octets (RFC 2046 allows 70)
_BOUNDARY_LINE_MAX = MAX_BOUNDARY + 4
_HEADER_NAME_MAX = 1000      # RFC 5322 §2.1.1: longer "names" are read as a nameless line

_LF, _CR, _SP, _TAB = 0x0A, 0x0D, 0x20, 0x09


@dataclass
class Field:
    """One header field: ``name`` as written (before ``:``, trailing blanks removed; empty for a
    line without a colon), ``value`` with leading blanks removed and continuation lines joined by
    ``\\n`` (each keeping its leading whitespace, CR before LF dropped), and the raw span
    ``[start, end)`` including the line endings."""

    name: bytes
    value: bytes
    start: int
    end: int

    @property
    def lname(self) -> bytes:
        return self.name.lower()


@dataclass(eq=False)
class MimePart:
    """One MIME entity: header ``[header_start, body_start)``, body ``[body_start, end)``."""

    header_start: int
    parent: "MimePart | None" = None
    depth: int = 0
    body_start: int = 0
    end: int = 0
    fields: list[Field] = field(default_factory=list)
    children: list["MimePart"] = field(default_factory=list)
    is_mime: bool = False
    multipart: bool = False
    digest: bool = False
    rfc822: bool = False
    text: bool = False
    overflow: bool = False
    content_type: ContentType | None = None  # the first Content-Type field, parsed
    _sizes: tuple[int, int] | None = field(default=None, repr=False)  # (octets as sent, lines), counted once

    def _count(self, raw: bytes) -> tuple[int, int]:
        # BODY and BODYSTRUCTURE both ask for every part's size and lines: count each body once.
        if self._sizes is None:
            self._sizes = (virtual_size(raw, self.body_start, self.end), raw.count(b"\n", self.body_start, self.end))
        return self._sizes

    def body_size(self, raw: bytes) -> int:
        """Body octets with bare LFs counted as CRLF (RFC 3501 §7.4.2 body size)."""
        return self._count(raw)[0]

    def body_lines(self, raw: bytes) -> int:
        """Number of lines of the body (LF count), RFC 3501 §7.4.2 ``body-fld-lines``."""
        return self._count(raw)[1]


def virtual_size(raw: bytes, start: int, end: int) -> int:
    """Octets in ``raw[start:end]`` when every bare LF is sent as CRLF."""
    lfs = raw.count(b"\n", start, end)
    if not lfs:
        return end - start
    crlfs = raw.count(b"\r\n", start, end)
    if start > 0 and start < end and raw[start] == _LF and raw[start - 1] == _CR:
        crlfs += 1
    return end - start + lfs - crlfs


@dataclass(eq=False)
class _Boundary:
    value: bytes
    part: MimePart


class _Scanner:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        self.boundaries: list[_Boundary] = []   # innermost last
        self.total_parts = 1

    # -- boundaries -------------------------------------------------------------------------

    def boundary_at(self, pos: int) -> tuple[_Boundary, bool] | None:
        """The boundary whose delimiter line starts at ``pos`` and whether it is a close-delimiter."""
        raw = self.raw
        if not self.boundaries or raw[pos:pos + 2] != b"--" or self.total_parts >= MAX_PARTS:
            return None
        data = pos + 2
        lf = raw.find(b"\n", data)
        trailing_dashes = False
        if lf < 0:
            size = min(self.n - data, _BOUNDARY_LINE_MAX)
        else:
            size = lf - data
            if size > 0 and raw[data + size - 1] == _CR:
                size -= 1
            trailing_dashes = size > 2 and raw[data + size - 2:data + size] == b"--"
        best: _Boundary | None = None
        for b in reversed(self.boundaries):
            blen = len(b.value)
            if blen <= size and raw.startswith(b.value, data) and (best is None or len(best.value) < blen):
                best = b
                if blen == size or (blen == size - 2 and trailing_dashes):
                    break
        if best is None:
            return None
        blen = len(best.value)
        return best, raw[data + blen:data + blen + 2] == b"--"

    def next_boundary(self, start: int) -> tuple[int, _Boundary, bool] | None:
        """The first boundary line at ``start`` or after a line break following it."""
        if not self.boundaries:
            return None
        hit = self.boundary_at(start)
        if hit:
            return start, hit[0], hit[1]
        raw, pos = self.raw, start
        while True:
            i = raw.find(b"\n--", pos)
            if i < 0:
                return None
            hit = self.boundary_at(i + 1)
            if hit:
                return i + 1, hit[0], hit[1]
            pos = i + 1

    # -- headers ----------------------------------------------------------------------------

    def read_header(self, part: MimePart, pos: int) -> tuple[int, int]:
        """Read ``part``'s header from ``pos``; returns (stream position after it, where the empty
        line ending it starts or -1 when there is none).

        Sets ``part.body_start``. When a boundary line interrupts the header, the line break
        before it is given back (it belongs to the boundary) and the returned position is the
        boundary line itself.
        """
        raw, n = self.raw, self.n
        prev_nl = 0
        while True:
            if pos >= n:
                part.body_start = n
                return n, -1
            if self.boundaries and raw[pos] == 0x2D:
                hit = self.boundary_at(pos)
                if hit and hit[0].part is not part:
                    part.body_start = pos - prev_nl
                    return pos, -1
            c = raw[pos]
            if c == _LF or (c == _CR and pos + 1 < n and raw[pos + 1] == _LF):
                part.body_start = pos + (1 if c == _LF else 2)
                return part.body_start, pos
            start = pos
            content_end, pos, prev_nl = self._line(pos)
            line = raw[start:content_end]
            colon = line.find(b":")
            if colon < 0:
                name, value = b"", line
            else:
                name_end = colon
                while name_end > 0 and line[name_end - 1] in (_SP, _TAB):
                    name_end -= 1
                if name_end > _HEADER_NAME_MAX:
                    name, value = b"", line
                else:
                    name = line[:name_end]
                    value = line[colon + 1:]
                    skip = 0
                    while skip < len(value) and value[skip] in (_SP, _TAB):
                        skip += 1
                    if skip == len(value) and value:
                        skip = 1
                    value = value[skip:]
            if pos < n and raw[pos] in (_SP, _TAB):
                parts = [value]
                while pos < n and raw[pos] in (_SP, _TAB):
                    cstart = pos
                    content_end, pos, prev_nl = self._line(pos)
                    parts.append(raw[cstart:content_end])
                value = b"\n".join(parts)
            part.fields.append(Field(name, value, start, pos))

    def _line(self, pos: int) -> tuple[int, int, int]:
        """(end of content without CR LF, start of next line, length of the line break)."""
        raw = self.raw
        lf = raw.find(b"\n", pos)
        if lf < 0:
            return self.n, self.n, 0
        if lf > pos and raw[lf - 1] == _CR:
            return lf - 1, lf + 1, 2
        return lf, lf + 1, 1

    def classify(self, part: MimePart, eoh: bool) -> bool:
        """Decide the part's kind from its header (RFC 2045 §4, §5; RFC 2046 §5.1.5).

        Returns True when the part is a multipart whose boundary is now registered.
        """
        boundary: bytes | None = None
        for f in part.fields:
            lname = f.lname
            if lname == b"mime-version":
                part.is_mime = True
            elif lname == b"content-type":
                part.is_mime = True
                if part.content_type is None:
                    ct = parse_content_type(f.value)
                    part.content_type = ct
                    ctype, csub = ct.type.lower(), ct.subtype.lower()
                    if ct.valid and ctype == b"message" and csub == b"rfc822":
                        part.rfc822 = True
                    elif ctype == b"text":
                        part.text = True
                    elif ct.valid and ctype == b"multipart":
                        part.multipart = True
                        part.digest = csub == b"digest"
                        for k, v in ct.params:
                            if k.lower() == b"boundary":
                                boundary = v[:MAX_BOUNDARY]
                                break
        registered = False
        if eoh and boundary is not None and part.is_mime:
            if part.depth + 1 >= MAX_DEPTH:
                part.overflow = True
                part.multipart = False
            else:
                self.boundaries.append(_Boundary(boundary, part))
                registered = True
        if not part.is_mime:
            part.multipart = part.digest = part.rfc822 = part.text = False
        if part.content_type is None or not part.is_mime:
            if part.parent is not None and part.parent.digest:
                part.rfc822 = True
            else:
                part.text = True
        return registered

    # -- the walk ---------------------------------------------------------------------------

    def new_part(self, parent: MimePart, start: int, *, mime: bool) -> MimePart:
        child = MimePart(header_start=start, parent=parent, depth=parent.depth + 1, is_mime=mime)
        parent.children.append(child)
        self.total_parts += 1
        return child

    def run(self) -> MimePart:
        root = MimePart(header_start=0)
        part = root
        pos = 0
        while True:
            # A part begins at pos: read its header, then decide how its body is read.
            stream, eoh = self.read_header(part, pos)
            registered = self.classify(part, eoh >= 0)
            if eoh >= 0 and self.boundaries and self.raw[stream:stream + 1] == b"-":
                hit = self.boundary_at(stream)
                if hit and hit[0].part is not part:
                    # No body at all: the empty line's break is the delimiter's (RFC 2046
                    # §5.1.1), so the header ends before it.
                    part.body_start = eoh
            cut = part if stream != part.body_start else None  # header cut short by a boundary line
            if part.rfc822 and not registered:
                if part.depth + 1 < MAX_DEPTH and self.total_parts < MAX_PARTS:
                    part = self.new_part(part, part.body_start, mime=False)
                    if cut is None:
                        pos = stream
                        continue
                    # The encapsulated message is empty: the boundary line follows at once.
                    part.body_start = part.end = part.header_start
                    self.classify(part, False)
                else:
                    part.overflow = True
                    part.rfc822 = False
            part, pos = self._after_body(part, stream, part.body_start, cut)
            if part is None:
                return root

    def _after_body(self, part: MimePart, scan_from: int, first_line_end: int,
                    cut: MimePart | None = None) -> tuple[MimePart | None, int]:
        """Read bodies from ``scan_from`` until a new part begins; returns (that part, its start).

        ``cut``: the part whose header a boundary line at ``scan_from`` interrupted; it (and what
        it contains) ends at ``first_line_end``, before the line break it gave back to its parent.
        Returns (None, _) once the input is exhausted (every open part then ends at the end).
        """
        raw = self.raw
        while True:
            hit = self.next_boundary(scan_from)
            if hit is None:
                self._finish(part, None, self.n)
                return None, self.n
            line, boundary, close = hit
            if line == scan_from:
                part = self._finish(part, boundary.part, scan_from, cut, first_line_end)
            else:
                end = line - (2 if raw[line - 2:line] == b"\r\n" else 1)
                part = self._finish(part, boundary.part, end)
            cut = None
            idx = self.boundaries.index(boundary)
            del self.boundaries[idx + (0 if close else 1):]
            lf = raw.find(b"\n", line)
            if lf < 0:
                self._finish(part, None, self.n)
                return None, self.n
            nxt = lf + 1
            if not close:
                return self.new_part(part, nxt, mime=True), nxt
            scan_from = first_line_end = nxt  # epilogue of the closed multipart

    @staticmethod
    def _finish(part: MimePart, upto: MimePart | None, end: int,
                cut: MimePart | None = None, cut_end: int = 0) -> MimePart:
        """End ``part`` and its ancestors below ``upto`` at ``end``; returns ``upto`` (or the root).

        Parts up to and including ``cut`` end at ``cut_end`` instead.
        """
        inner = cut is not None
        while part is not upto:
            part.end = cut_end if inner else end
            if part is cut:
                inner = False
            if part.parent is None:
                return part
            part = part.parent
        return part


def scan(raw: bytes) -> MimePart:
    """The MIME tree of ``raw`` with byte offsets (see the module docstring). Never raises."""
    return _Scanner(raw).run()
