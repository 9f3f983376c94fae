"""IMAP string forms on the wire (RFC 3501 §4.3, §9 ``string`` / ``nstring``).

``quoted`` = ``"`` TEXT-CHARs with ``\\`` and ``"`` escaped; anything a quoted string cannot hold
(CR, LF, 8-bit octets) goes out as a ``{n}\\r\\n`` literal. The choice between the two is the one
Dovecot makes (a literal also once a value needs more than four escapes), so our answers compare
byte for byte with the server clients are most often tested against.
"""

from __future__ import annotations

NIL = b"NIL"
_MAX_QUOTED_ESCAPES = 4


def literal(value: bytes) -> bytes:
    """``{n}\\r\\n`` + value (RFC 3501 §4.3 literal)."""
    return b"{%d}\r\n" % len(value) + value


def _c_string(value: bytes) -> bytes:
    # Header values reach here with NULs already replaced; a stray NUL ends the value, as it would
    # for any server holding header text in C strings.
    nul = value.find(b"\0")
    return value if nul < 0 else value[:nul]


def nstring(value: bytes | None) -> bytes:
    """``NIL``, a quoted string, or a literal (RFC 3501 §9 ``nstring``)."""
    if value is None:
        return NIL
    value = _c_string(value)
    escapes = 0
    for c in value:
        if c == 0x22 or c == 0x5C:
            escapes += 1
            if escapes > _MAX_QUOTED_ESCAPES:
                return literal(value)
        elif c == 0x0D or c == 0x0A or c >= 0x80:
            return literal(value)
    if escapes:
        value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + value + b'"'


def nstring_nolf(value: bytes | None) -> bytes:
    """:func:`nstring` of a header value with its line breaks removed (unfolding, RFC 5322 §2.2.3).

    A CR or LF is dropped when whitespace (or another line break, or the end) follows it, and
    becomes one space otherwise, so words on either side of a bare line break stay apart.
    """
    if value is None or (b"\r" not in value and b"\n" not in value):
        return nstring(value)
    value = _c_string(value)
    out = bytearray()
    n = len(value)
    for i, c in enumerate(value):
        if c != 0x0D and c != 0x0A:
            out.append(c)
        elif i + 1 < n and value[i + 1] not in b" \t\r\n":
            out.append(0x20)
    return nstring(bytes(out))


def string_for_humans(value: bytes) -> bytes:
    """A display text (Subject, a display name) cleaned for reading, as a quoted string or literal.

    Runs of whitespace, tabs and line breaks become one space; leading and trailing whitespace go.
    Unchanged text is sent quoted as it is; changed text (or text with 8-bit
    octets, ``"`` or ``\\``) is sent as a literal.
    """
    value = _c_string(value)
    modify = False
    remove = 0
    last_lwsp = True
    ws_prefix = True
    for c in value:
        if c in (0x0D, 0x0A, 0x09):
            modify = True
            if last_lwsp:
                remove += 1
            last_lwsp = True
        elif c == 0x20:
            if last_lwsp:
                modify = True
                remove += 1
            last_lwsp = True
        elif c == 0x22 or c == 0x5C:
            modify = True
            last_lwsp = False
        else:
            if c & 0x80:
                modify = True
            last_lwsp = False
        if not last_lwsp:
            ws_prefix = False
    if last_lwsp and value and not ws_prefix:
        modify = True
        remove += 1
    if not modify:
        return b'"' + value + b'"'
    if remove == len(value):
        return b'""'
    out = bytearray()
    last_lwsp = True
    ws_prefix = True
    for c in value:
        if c in (0x0D, 0x0A, 0x09, 0x20):
            if not last_lwsp:
                out.append(0x20)
            last_lwsp = True
        else:
            out.append(c)
            last_lwsp = False
        if not last_lwsp:
            ws_prefix = False
    if last_lwsp and value and not ws_prefix:
        del out[-1:]
    return literal(bytes(out))
