"""FETCH attributes (RFC 3501 §6.4.5, §9 ``fetch-att``; RFC 7162 ``MODSEQ`` and ``CHANGEDSINCE``)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from imapwindow.errors import BadCommand
from imapwindow.parsing.primitives import astring, number, sp

SIMPLE = ("UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822",
          "RFC822.HEADER", "RFC822.TEXT", "MODSEQ")
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
MAX_FIELDS = 200
MAX_PART_DEPTH = 32
_NAME_RE = re.compile(rb"[A-Za-z0-9.]+")
_PART_RE = re.compile(rb"[1-9][0-9]{0,8}(?:\.[1-9][0-9]{0,8})*")
_SAFE_FIELD_RE = re.compile(r"[!-~]+")


@dataclass(frozen=True)
class BodySection:
    """``BODY[section]<partial>`` / ``BODY.PEEK[…]``. ``part`` is the part number path (empty for the
    whole message); ``specifier`` one of None, HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME;
    ``fields`` the header names as the client wrote them; ``partial`` ``(origin, count)``."""

    peek: bool
    part: tuple[int, ...]
    specifier: str | None
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None

    def label(self) -> bytes:
        """The response item name (RFC 3501 §7.4.2): ``BODY[1.HEADER.FIELDS (From Subject)]<0>``;
        header names are echoed in the client's order and spelling. Computed once per section."""
        return _label(self)

    def _label(self) -> bytes:
        parts = [".".join(str(p) for p in self.part)] if self.part else []
        if self.specifier:
            parts.append(self.specifier)
        text = ".".join(parts)
        if self.fields:
            text += " (" + " ".join(f if _SAFE_FIELD_RE.fullmatch(f) and '"' not in f and "\\" not in f
                                    and "(" not in f and ")" not in f else '"' + f + '"' for f in self.fields) + ")"
        out = f"BODY[{text}]"
        if self.partial is not None:
            out += f"<{self.partial[0]}>"
        return out.encode("ascii", "replace")

    @property
    def sets_seen(self) -> bool:
        return not self.peek


@functools.lru_cache(maxsize=256)
def _label(section: BodySection) -> bytes:
    return section._label()


@dataclass(frozen=True)
class FetchRequest:
    """Parsed ``fetch-att`` list: simple names (upper-case) and body sections, in request order,
    plus RFC 7162 ``CHANGEDSINCE``."""

    items: tuple[str | BodySection, ...]
    changed_since: int | None = None

    @property
    def names(self) -> set[str]:
        return {i for i in self.items if isinstance(i, str)}


def parse_fetch_atts(buf: bytes) -> tuple[FetchRequest, bytes]:
    """``("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")")`` then the optional
    ``SP "(" CHANGEDSINCE n ")"`` modifier."""
    if buf[:1] == b"(":
        items = []
        buf = buf[1:]
        while True:
            item, buf = _fetch_att(buf)
            items.append(item)
            if buf[:1] == b")":
                buf = buf[1:]
                break
            buf = sp(buf)
        if not items:
            raise BadCommand("empty FETCH list")
    else:
        m = _NAME_RE.match(buf)
        name = m.group().decode().upper() if m else ""
        if name in MACROS:
            items, buf = list(MACROS[name]), buf[m.end():]
        else:
            item, buf = _fetch_att(buf)
            items = [item]
    changed_since = None
    if buf[:2] == b" (":
        rest = buf[2:]
        m = re.match(rb"CHANGEDSINCE ", rest, re.I)
        if not m:
            raise BadCommand("unknown FETCH modifier (only CHANGEDSINCE is supported)")
        changed_since, rest = number(rest[m.end():])
        if rest[:1] != b")":
            raise BadCommand("expected ')' after CHANGEDSINCE")
        buf = rest[1:]
        if "MODSEQ" not in items:
            items.append("MODSEQ")  # RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ
    return FetchRequest(tuple(items), changed_since), buf


def _fetch_att(buf: bytes) -> tuple[str | BodySection, bytes]:
    m = _NAME_RE.match(buf)
    if not m:
        raise BadCommand("expected a FETCH item" + (f" near {buf[:20]!r}" if buf else ""))
    name = m.group().decode().upper()
    rest = buf[m.end():]
    if name in ("BODY", "BODY.PEEK") and rest[:1] == b"[":
        return _section(rest[1:], peek=name == "BODY.PEEK")
    if name in SIMPLE:
        return name, rest
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        raise BadCommand("BINARY is not supported (not advertised)")
    raise BadCommand(f"unknown FETCH item {name}")


def _section(buf: bytes, *, peek: bool) -> tuple[BodySection, bytes]:
    part: tuple[int, ...] = ()
    m = _PART_RE.match(buf)
    if m:
        part = tuple(int(x) for x in m.group().split(b"."))
        if len(part) > MAX_PART_DEPTH:
            raise BadCommand("part number too deep")
        buf = buf[m.end():]
        if buf[:1] == b".":
            buf = buf[1:]
        elif buf[:1] != b"]":
            raise BadCommand("bad section" + f" near {buf[:20]!r}")
    specifier = None
    fields: tuple[str, ...] = ()
    if buf[:1] != b"]":
        m = re.match(rb"HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME", buf, re.I)
        if not m:
            raise BadCommand(f"bad section near {buf[:20]!r}")
        specifier = m.group().decode().upper()
        buf = buf[m.end():]
        if specifier == "MIME" and not part:
            raise BadCommand("MIME needs a part number (RFC 3501 section 6.4.5)")
        if specifier.startswith("HEADER.FIELDS"):
            buf = sp(buf)
            if buf[:1] != b"(":
                raise BadCommand("expected a list of header names")
            buf = buf[1:]
            names = []
            while True:
                raw, buf = astring(buf)
                names.append(raw.decode("utf-8", "replace"))
                if len(names) > MAX_FIELDS:
                    raise BadCommand("too many header names", "LIMIT")
                if buf[:1] == b")":
                    buf = buf[1:]
                    break
                buf = sp(buf)
            fields = tuple(names)
    if buf[:1] != b"]":
        raise BadCommand("expected ']'" + (f" near {buf[:20]!r}" if buf else ""))
    buf = buf[1:]
    partial = None
    if buf[:1] == b"<":
        m = re.match(rb"<([0-9]{1,10})\.([0-9]{1,10})>", buf)
        if not m:
            raise BadCommand("bad partial range; expected <origin.count>")
        if int(m.group(2)) == 0:
            raise BadCommand("partial count must not be zero")
        partial = (int(m.group(1)), int(m.group(2)))
        buf = buf[m.end():]
    return BodySection(peek, part, specifier, fields, partial), buf
