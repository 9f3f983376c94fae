"""Whole commands (RFC 3501 §6, §9 ``command``): tag, name, and the arguments each command takes.

:func:`parse_command` returns a :class:`Command` whose ``args`` is a dict of parsed values named as
in the RFC grammar. Unknown commands and bad syntax raise :class:`BadCommand` (the caller answers
``tag BAD``); a command line without a readable tag raises :class:`UntaggedBad` (``* BAD``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from imapwindow.errors import BadCommand
from imapwindow.parsing.fetch import parse_fetch_atts
from imapwindow.parsing.primitives import (
    astring, atom, end, flag, list_mailbox, mailbox, nstring, number, paren_list, sp,
)
from imapwindow.parsing.search import parse_search
from imapwindow.parsing.sequence import parse_sequence_set

_TAG_RE = re.compile(rb"[^\x00-\x20\x7f(){%*\"\\+]+")
_NAME_RE = re.compile(rb"[A-Za-z]+")
MAX_ID_PAIRS = 30


class UntaggedBad(BadCommand):
    """No tag could be read from the line (answered with ``* BAD``)."""


@dataclass
class Command:
    """One parsed command: ``tag`` (bytes, echoed), ``name`` (upper-case; ``UID FETCH`` is name
    ``FETCH`` with ``uid`` True) and ``args``."""

    tag: bytes
    name: str
    uid: bool = False
    args: dict[str, Any] = field(default_factory=dict)


def read_tag(buf: bytes) -> tuple[bytes, bytes]:
    """The tag and the rest; raises :class:`UntaggedBad`."""
    m = _TAG_RE.match(buf)
    if not m or buf[m.end():m.end() + 1] not in (b" ", b""):
        raise UntaggedBad("expected a tag, then a command")
    return m.group(), buf[m.end():]


def parse_command(buf: bytes) -> Command:
    """Parse one whole command (its literals inline; no trailing CRLF)."""
    tag, rest = read_tag(buf)
    if not rest:
        raise BadCommand("missing command name")
    rest = sp(rest)
    m = _NAME_RE.match(rest)
    if not m:
        raise BadCommand("expected a command name")
    name = m.group().decode().upper()
    rest = rest[m.end():]
    uid = False
    if name == "UID":
        rest = sp(rest)
        m = _NAME_RE.match(rest)
        name = m.group().decode().upper() if m else ""
        if name not in ("FETCH", "SEARCH", "STORE", "COPY", "MOVE", "EXPUNGE"):
            raise BadCommand("UID must be followed by FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE")
        rest = rest[m.end():]
        uid = True
    parser = _PARSERS.get(name)
    if parser is None:
        raise BadCommand(f"unknown command {name[:30]}")
    cmd = Command(tag, name, uid)
    cmd.args = parser(rest)
    return cmd


def _none(buf: bytes) -> dict[str, Any]:
    end(buf)
    return {}


def _login(buf: bytes) -> dict[str, Any]:
    user, buf = astring(sp(buf))
    password, buf = astring(sp(buf))
    end(buf)
    return {"username": user, "password": password}


def _authenticate(buf: bytes) -> dict[str, Any]:
    mech, buf = atom(sp(buf))
    initial = None
    if buf:
        buf = sp(buf)
        if buf == b"=":
            initial, buf = b"", b""
        else:
            m = re.match(rb"[A-Za-z0-9+/]+=*", buf)
            if not m:
                raise BadCommand("bad initial response")
            initial, buf = m.group(), buf[m.end():]
    end(buf)
    return {"mechanism": mech.upper(), "initial": initial}


def _mailbox_only(buf: bytes) -> dict[str, Any]:
    name, buf = mailbox(sp(buf))
    end(buf)
    return {"mailbox": name}


def _select(buf: bytes) -> dict[str, Any]:
    name, buf = mailbox(sp(buf))
    condstore = False
    if buf:
        params, buf = paren_list(sp(buf), atom)
        for p in params:
            if p.upper() == "CONDSTORE":
                condstore = True
            else:
                raise BadCommand(f"unknown SELECT parameter {p}")
    end(buf)
    return {"mailbox": name, "condstore": condstore}


def _rename(buf: bytes) -> dict[str, Any]:
    old, buf = mailbox(sp(buf))
    new, buf = mailbox(sp(buf))
    end(buf)
    return {"mailbox": old, "new": new}


def _list(buf: bytes) -> dict[str, Any]:
    """RFC 3501 LIST and RFC 5258 LIST-EXTENDED (selection and return options, several patterns),
    RFC 5819 ``RETURN (STATUS (…))``."""
    buf = sp(buf)
    selection: list[str] = []
    if buf[:1] == b"(":
        opts, buf = paren_list(buf, atom)
        selection = [o.upper() for o in opts]
        buf = sp(buf)
    reference, buf = mailbox(buf)
    buf = sp(buf)
    if buf[:1] == b"(":
        patterns, buf = paren_list(buf, list_mailbox)
    else:
        pattern, buf = list_mailbox(buf)
        patterns = [pattern]
    returns: list[str] = []
    status_items: list[str] = []
    if buf:
        buf = sp(buf)
        m = re.match(rb"RETURN ", buf, re.I)
        if not m:
            raise BadCommand("expected RETURN options")
        buf = buf[m.end():]
        if buf[:1] != b"(":
            raise BadCommand("expected '(' after RETURN")
        buf = buf[1:]
        while buf[:1] != b")":
            opt, buf = atom(buf)
            opt = opt.upper()
            if opt == "STATUS":
                items, buf = paren_list(sp(buf), atom)
                status_items = [i.upper() for i in items]
            returns.append(opt)
            if buf[:1] == b" ":
                buf = buf[1:]
            elif buf[:1] != b")":
                raise BadCommand("bad RETURN options")
        buf = buf[1:]
    end(buf)
    return {"selection": selection, "reference": "" if reference == "" else reference, "patterns": patterns,
            "returns": returns, "status_items": status_items}


def _lsub(buf: bytes) -> dict[str, Any]:
    reference, buf = mailbox(sp(buf))
    pattern, buf = list_mailbox(sp(buf))
    end(buf)
    return {"selection": ["SUBSCRIBED"], "reference": reference, "patterns": [pattern], "returns": [],
            "status_items": [], "lsub": True}


def _status(buf: bytes) -> dict[str, Any]:
    name, buf = mailbox(sp(buf))
    items, buf = paren_list(sp(buf), atom)
    end(buf)
    if not items:
        raise BadCommand("STATUS needs at least one item")
    return {"mailbox": name, "items": [i.upper() for i in items]}


def _append(buf: bytes) -> dict[str, Any]:
    name, buf = mailbox(sp(buf))
    return {"mailbox": name}  # refused whatever follows (DESIGN.md: no uploads)


def _id(buf: bytes) -> dict[str, Any]:
    buf = sp(buf)
    if buf.upper() == b"NIL":
        return {"params": None}
    items, buf = paren_list(buf, nstring)
    end(buf)
    if len(items) % 2 or len(items) > 2 * MAX_ID_PAIRS:
        raise BadCommand("ID takes up to 30 field/value pairs")
    return {"params": items}


def _enable(buf: bytes) -> dict[str, Any]:
    caps = []
    while buf:
        cap, buf = atom(sp(buf))
        caps.append(cap.upper())
    if not caps:
        raise BadCommand("ENABLE needs a capability")
    return {"capabilities": caps}


def _search(buf: bytes) -> dict[str, Any]:
    buf = sp(buf)
    returns = None
    m = re.match(rb"RETURN \(", buf, re.I)
    if m:  # RFC 4731 ESEARCH result options
        buf = buf[m.end():]
        returns = []
        while buf[:1] != b")":
            opt, buf = atom(buf)
            returns.append(opt.upper())
            if buf[:1] == b" ":
                buf = buf[1:]
        buf = sp(buf[1:])
        for r in returns:
            if r not in ("MIN", "MAX", "ALL", "COUNT"):
                raise BadCommand(f"unknown SEARCH RETURN option {r}")
    request, buf = parse_search(buf)
    end(buf)
    return {"request": request, "returns": returns}


def _fetch(buf: bytes) -> dict[str, Any]:
    seq, buf = parse_sequence_set(sp(buf))
    request, buf = parse_fetch_atts(sp(buf))
    end(buf)
    return {"set": seq, "request": request}


def _store(buf: bytes) -> dict[str, Any]:
    seq, buf = parse_sequence_set(sp(buf))
    buf = sp(buf)
    unchanged_since = None
    m = re.match(rb"\(UNCHANGEDSINCE ", buf, re.I)
    if m:
        unchanged_since, buf = number(buf[m.end():])
        if buf[:1] != b")":
            raise BadCommand("expected ')' after UNCHANGEDSINCE")
        buf = sp(buf[1:])
    m = re.match(rb"([+-]?)FLAGS(\.SILENT)?", buf, re.I)
    if not m:
        raise BadCommand("expected FLAGS, +FLAGS or -FLAGS")
    mode = {b"+": "add", b"-": "remove", b"": "replace"}[m.group(1)]
    silent = bool(m.group(2))
    buf = sp(buf[m.end():])
    if buf[:1] == b"(":
        flags, buf = paren_list(buf, flag)
    else:
        flags = []
        while True:
            f, buf = flag(buf)
            flags.append(f)
            if not buf:
                break
            buf = sp(buf)
    end(buf)
    return {"set": seq, "mode": mode, "silent": silent, "flags": flags, "unchanged_since": unchanged_since}


def _copy(buf: bytes) -> dict[str, Any]:
    seq, buf = parse_sequence_set(sp(buf))
    name, buf = mailbox(sp(buf))
    end(buf)
    return {"set": seq, "mailbox": name}


def _expunge(buf: bytes) -> dict[str, Any]:
    if buf:
        seq, buf = parse_sequence_set(sp(buf))
        end(buf)
        return {"set": seq}
    return {"set": None}


_PARSERS = {
    "CAPABILITY": _none, "NOOP": _none, "LOGOUT": _none, "STARTTLS": _none, "CHECK": _none, "CLOSE": _none,
    "UNSELECT": _none, "IDLE": _none, "NAMESPACE": _none,
    "LOGIN": _login, "AUTHENTICATE": _authenticate,
    "SELECT": _select, "EXAMINE": _select,
    "CREATE": _mailbox_only, "DELETE": _mailbox_only, "SUBSCRIBE": _mailbox_only, "UNSUBSCRIBE": _mailbox_only,
    "RENAME": _rename, "LIST": _list, "LSUB": _lsub, "STATUS": _status, "APPEND": _append,
    "ID": _id, "ENABLE": _enable, "SEARCH": _search, "FETCH": _fetch, "STORE": _store,
    "COPY": _copy, "MOVE": _copy, "EXPUNGE": _expunge,
}
