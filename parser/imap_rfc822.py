"""RFC 5322 / RFC 2045 tokens as IMAP servers read them for ENVELOPE and BODYSTRUCTURE.

Pure functions over ``bytes`` (no decoding: ENVELOPE and BODYSTRUCTURE carry header text as it
appears, RFC 3501 §7.4.2). The tolerance rules for broken input (missing ``>``, a group without
``;``, a parameter without a value, RFC 2231 continuations with a missing index, obsolete
``local-part`` dots) follow what Dovecot 2.3 answers, so a client sees the same structure from
mailkite as from the server most clients are tested against; where RFC 5322 is silent about
recovery we take Dovecot's choice and say so.

Return convention of the ``_Cursor`` readers (as in RFC 822 token parsers generally):
``1`` more input follows, ``0`` the input ended (a value may have been read), ``-1`` invalid input.

Public entry points: :func:`parse_addresses`, :func:`parse_content_type`, :func:`parse_params`,
:func:`parse_token_value`, :func:`parse_language`.
"""

from __future__ import annotations

from dataclasses import dataclass

# U+FFFD in UTF-8: what a NUL byte inside a quoted-string, comment or parameter becomes.
NUL_REPLACEMENT = b"\xef\xbf\xbd"

# RFC 5322 §3.2.3 atext (plus every 8-bit byte, RFC 6532); MIME tspecials (RFC 2045 §5.1) that are
# atext are marked 4, so a MIME token is "atext but not 4" plus ".".
_ATEXT = bytearray(256)
for _c in b"!#$%&'*+-^_`{|}~":
    _ATEXT[_c] = 1
for _c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _ATEXT[_c] = 2
for _c in range(128, 256):
    _ATEXT[_c] = 2
for _c in b"/=?":
    _ATEXT[_c] = 4
ATEXT = bytes(_ATEXT)
_TOKEN = bytes(1 if (v & 3) or i == ord(".") else 0 for i, v in enumerate(_ATEXT))
_ATEXT_OR_DOT = bytes(1 if v or i == ord(".") else 0 for i, v in enumerate(_ATEXT))

_SP, _TAB, _CR, _LF = 0x20, 0x09, 0x0D, 0x0A
_DQUOTE, _BSLASH, _DOT = 0x22, 0x5C, 0x2E


def _unfolded(data: bytes, start: int, lf: int) -> bytes:
    """``data[start:lf]`` without the CR of a CRLF at ``lf`` (folding inside a token, RFC 5322 §2.2.3)."""
    end = lf - 1 if lf > start and data[lf - 1] == _CR else lf
    return data[start:end]


class _Cursor:
    """A read position over one header value (bytes), with RFC 822 lexical readers."""

    __slots__ = ("data", "pos", "end", "last_comment", "nul_replacement")

    def __init__(self, data: bytes, *, keep_comments: bool = False, nul_replacement: bytes | None = None) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment: bytearray | None = bytearray() if keep_comments else None
        self.nul_replacement = nul_replacement

    def cur(self) -> int:
        """The byte at the position, or -1 at the end."""
        return self.data[self.pos] if self.pos < self.end else -1

    def skip_comment(self) -> int:
        """Skip one (possibly nested) comment starting at ``(``; remember its text."""
        data, end = self.data, self.end
        comment = self.last_comment
        if comment is not None:
            del comment[:]
        level = 1
        self.pos += 1
        start = self.pos
        while self.pos < end:
            c = data[self.pos]
            if c == 0:
                if comment is not None and self.nul_replacement is not None:
                    comment += data[start:self.pos] + self.nul_replacement
                    start = self.pos + 1
            elif c == 0x28:
                level += 1
            elif c == 0x29:
                level -= 1
                if level == 0:
                    if comment is not None:
                        comment += data[start:self.pos]
                    self.pos += 1
                    return 1 if self.pos < end else 0
            elif c == _LF:
                if comment is not None:
                    comment += _unfolded(data, start, self.pos)
                    start = self.pos + 1
            elif c == _BSLASH:
                self.pos += 1
                if self.pos >= end:
                    return -1
                if data[self.pos] in (_CR, _LF, 0):
                    self.pos -= 1  # obs-qp: keep the backslash, read the CR/LF/NUL normally
                else:
                    if comment is not None:
                        comment += data[start:self.pos - 1]
                    start = self.pos
            self.pos += 1
        return -1  # missing ")"

    def skip_lwsp(self) -> int:
        """Skip whitespace, line breaks and comments (CFWS, RFC 5322 §3.2.2)."""
        data, end = self.data, self.end
        while self.pos < end:
            c = data[self.pos]
            if c in (_SP, _TAB, _CR, _LF):
                self.pos += 1
            elif c == 0x28:
                if self.skip_comment() < 0:
                    return -1
            else:
                break
        return 1 if self.pos < end else 0

    def _run(self, table: bytes) -> int:
        data, end, pos = self.data, self.end, self.pos
        while pos < end and table[data[pos]]:
            pos += 1
        return pos

    def atom(self, out: bytearray) -> int:
        """RFC 5322 §3.2.3 atom."""
        if self.pos >= self.end or not ATEXT[self.data[self.pos]]:
            return -1
        start = self.pos
        self.pos = self._run(ATEXT)
        out += self.data[start:self.pos]
        return self.skip_lwsp() if self.pos < self.end else 0

    def dot_atom(self, out: bytearray) -> int:
        """RFC 5322 §3.2.3 dot-atom, allowing CFWS around the dots (RFC 822 compatibility)."""
        data, end = self.data, self.end
        if self.pos >= end or not ATEXT[data[self.pos]]:
            return -1
        start = self.pos
        self.pos += 1
        while self.pos < end:
            if ATEXT[data[self.pos]]:
                self.pos += 1
                continue
            if start == self.pos:
                return -1
            out += data[start:self.pos]
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if data[self.pos] != _DOT:
                return 1
            self.pos += 1
            out += b"."
            if self.skip_lwsp() <= 0:
                return -1
            start = self.pos
        out += data[start:self.pos]
        return 0

    def mime_token(self, out: bytearray) -> int:
        """RFC 2045 §5.1 token (may be empty)."""
        start = self.pos
        self.pos = self._run(_TOKEN)
        out += self.data[start:self.pos]
        return self.skip_lwsp() if self.pos < self.end else 0

    def quoted_string(self, out: bytearray) -> int:
        """RFC 5322 §3.2.4 quoted-string at ``"``; quoted-pairs unescaped, folding removed."""
        data, end = self.data, self.end
        self.pos += 1
        start = self.pos
        while self.pos < end:
            c = data[self.pos]
            if c == 0:
                if self.nul_replacement is not None:
                    out += data[start:self.pos] + self.nul_replacement
                    start = self.pos + 1
            elif c == _DQUOTE:
                out += data[start:self.pos]
                self.pos += 1
                return self.skip_lwsp()
            elif c == _LF:
                out += _unfolded(data, start, self.pos)
                start = self.pos + 1
            elif c == _BSLASH:
                self.pos += 1
                if self.pos >= end:
                    return -1
                if data[self.pos] in (_CR, _LF, 0):
                    self.pos -= 1
                else:
                    out += data[start:self.pos - 1]
                    start = self.pos
            self.pos += 1
        return -1  # missing closing quote

    def _atom_or_dot(self, out: bytearray) -> int:
        start = self.pos
        self.pos = self._run(_ATEXT_OR_DOT)
        out += self.data[start:self.pos]
        return self.skip_lwsp() if self.pos < self.end else 0

    def phrase(self, out: bytearray) -> int:
        """RFC 5322 §3.2.5 phrase (and obs-phrase: dots allowed); words joined by one space."""
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == _DOT:
            return -1
        while True:
            if self.data[self.pos] == _DQUOTE:
                ret = self.quoted_string(out)
            else:
                ret = self._atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.data[self.pos]
            if not ATEXT[c] and c != _DQUOTE and c != _DOT:
                break
            out += b" "
        return self.skip_lwsp()

    def _domain_literal(self, out: bytearray) -> int:
        data, end = self.data, self.end
        start = self.pos
        self.pos += 1
        while self.pos < end:
            c = data[self.pos]
            if c == 0:
                if self.nul_replacement is not None:
                    out += data[start:self.pos] + self.nul_replacement
                    start = self.pos + 1
            elif c == 0x5B:
                return -1
            elif c == 0x5D:
                out += data[start:self.pos + 1]
                self.pos += 1
                return self.skip_lwsp()
            elif c == _LF:
                out += _unfolded(data, start, self.pos)
                start = self.pos + 1
            elif c == _BSLASH:  # the backslash is kept in a domain literal
                self.pos += 1
                if self.pos >= end:
                    return -1
                if data[self.pos] in (_CR, _LF, 0):
                    out += data[start:self.pos]
                    start = self.pos
                    self.pos -= 1
            self.pos += 1
        return -1

    def domain(self, out: bytearray) -> int:
        """RFC 5322 §3.4.1 domain after ``@``: dot-atom, obs-domain or domain-literal."""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == 0x5B:
            return self._domain_literal(out)
        return self.dot_atom(out)

    def content_type(self, out: bytearray) -> int:
        """RFC 2045 §5.1 ``type "/" subtype``; on error ``out`` keeps what could be read."""
        mark = len(out)
        if self.skip_lwsp() <= 0:
            return -1
        if self.mime_token(out) <= 0 or len(out) == mark:
            return -1
        if self.data[self.pos] != 0x2F:
            del out[mark:]
            return -1
        self.pos += 1
        if self.skip_lwsp() <= 0:
            del out[mark:]
            return -1
        out += b"/"
        sub = len(out)
        ret = self.mime_token(out)
        if ret < 0 or len(out) == sub or (self.pos != self.end and self.data[self.pos] != 0x3B):
            del out[mark:]
            return -1
        return ret

    def content_param(self, value: bytearray) -> tuple[int, bytes | None]:
        """One ``; attribute=value`` (RFC 2045 §5.1); returns (status, attribute)."""
        del value[:]
        if self.pos >= self.end:
            return 0, None
        if self.data[self.pos] != 0x3B:
            return -1, None
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1, None
        key = bytearray()
        if self.mime_token(key) <= 0:
            return -1, None
        if self.data[self.pos] != 0x3D:
            return -1, None
        self.pos += 1
        ret = self.skip_lwsp()
        if ret <= 0:
            pass  # no value
        elif self.data[self.pos] == _DQUOTE:
            ret = self.quoted_string(value)
        elif self.data[self.pos] == 0x3D:
            # name==?utf-8?b?...?= : an unquoted encoded-word, taken up to the next ; or space
            start = self.pos
            while self.pos < self.end and self.data[self.pos] not in b"; \t\r\n":
                self.pos += 1
            value += self.data[start:self.pos]
        else:
            ret = self.mime_token(value)
        return (-1 if ret < 0 else 1), bytes(key)


def parse_params(cur: _Cursor) -> list[tuple[bytes, bytes]]:
    """The ``;``-separated parameters from the cursor on, RFC 2231 continuations joined.

    Returns ``[(attribute, value)]`` in header order; continued parameters (``name*0``,
    ``name*1*``…) are joined into one ``name`` (or ``name*`` when any segment is extended, value
    still percent-encoded: RFC 2231 §3-4) after the plain ones. Segments with a missing index are
    kept as they were. Broken parameters are skipped; never raises.
    """
    saved = cur.nul_replacement
    cur.nul_replacement = NUL_REPLACEMENT
    plain: list[tuple[bytes, bytes]] = []
    segments: list[tuple[bytes, int, bool, bytes]] = []  # (name, index, extended, value)
    value = bytearray()
    idx = 0  # carried over between parameters, as a bare "name*" reuses the previous index
    while True:
        ret, key = cur.content_param(value)
        if ret == 0:
            break
        if ret < 0:
            if cur.pos >= cur.end:
                break
            cur.pos += 1
            continue
        assert key is not None
        star = key.find(b"*")
        if star < 0:
            plain.append((key, bytes(value)))
            continue
        p = star
        if p + 1 < len(key):
            p += 1
            idx = 0
            while p < len(key) and 0x30 <= key[p] <= 0x39:
                idx = idx * 10 + key[p] - 0x30
                p += 1
        extended = p < len(key) and key[p] == 0x2A
        if extended:
            p += 1
        if p < len(key):
            plain.append((key, bytes(value)))
        else:
            segments.append((key[:star], idx, extended, bytes(value)))
    cur.nul_replacement = saved
    if not segments:
        return plain
    segments.sort(key=lambda s: (s[0], s[1]))
    i = 0
    while i < len(segments):
        name = segments[i][0].lower()
        j, ok, any_ext, want = i, True, False, 0
        while j < len(segments) and segments[j][0].lower() == name:
            if segments[j][1] != want:
                ok = False
            any_ext = any_ext or segments[j][2]
            want += 1
            j += 1
        if not ok:
            for seg_name, seg_idx, seg_ext, seg_value in segments[i:j]:
                plain.append((seg_name + b"*%d" % seg_idx + (b"*" if seg_ext else b""), seg_value))
        else:
            joined = bytearray(b"''" if not segments[i][2] and any_ext else b"")
            for _, _, seg_ext, seg_value in segments[i:j]:
                joined += seg_value.replace(b"%", b"%25") if (not seg_ext and any_ext) else seg_value
            plain.append((segments[i][0] + (b"*" if any_ext else b""), bytes(joined)))
        i = j
    return plain


@dataclass(frozen=True)
class ContentType:
    """A parsed Content-Type: ``type`` and ``subtype`` as written (empty when unreadable)."""

    type: bytes
    subtype: bytes
    params: tuple[tuple[bytes, bytes], ...]
    valid: bool


def parse_content_type(value: bytes, *, with_params: bool = True) -> ContentType:
    """Content-Type (RFC 2045 §5.1). A broken value keeps what could be read, without parameters."""
    cur = _Cursor(value)
    cur.skip_lwsp()
    out = bytearray()
    ret = cur.content_type(out)
    main, slash, sub = bytes(out).partition(b"/")
    params: tuple[tuple[bytes, bytes], ...] = ()
    if ret >= 0 and with_params:
        params = tuple(parse_params(cur))
    return ContentType(main, sub if slash else b"", params, ret >= 0)


def parse_token_value(value: bytes) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
    """A ``token *(; parameter)`` field such as Content-Disposition (RFC 2183 §2)."""
    cur = _Cursor(value)
    cur.skip_lwsp()
    out = bytearray()
    if cur.mime_token(out) < 0:
        return None, []
    return bytes(out), parse_params(cur)


def parse_transfer_encoding(value: bytes) -> bytes | None:
    """Content-Transfer-Encoding (RFC 2045 §6.1): one token and nothing after it, else None."""
    cur = _Cursor(value)
    cur.skip_lwsp()
    out = bytearray()
    if cur.mime_token(out) >= 0 and cur.skip_lwsp() == 0 and out:
        return bytes(out)
    return None


def parse_language(value: bytes) -> list[bytes]:
    """Content-Language (RFC 3282 §2): the comma-separated tags up to the first unreadable one."""
    cur = _Cursor(value)
    langs: list[bytes] = []
    cur.skip_lwsp()
    out = bytearray()
    while cur.atom(out) >= 0:
        langs.append(bytes(out))
        del out[:]
        if cur.pos >= cur.end or cur.data[cur.pos] != 0x2C:
            break
        cur.pos += 1
        cur.skip_lwsp()
    return langs


@dataclass
class Address:
    """One RFC 3501 §7.4.2 address structure: (name route mailbox host).

    A group start has only ``mailbox`` (the group name); a group end has all four None.
    """

    name: bytes | None = None
    route: bytes | None = None
    mailbox: bytes | None = None
    domain: bytes | None = None


class _AddressParser:
    """RFC 5322 §3.4 address-list, with the obsolete forms of §4.4 and named recovery for junk.

    Recovery (Dovecot's, which clients see daily): a mailbox without a local part becomes
    ``MISSING_MAILBOX``, without a domain ``MISSING_DOMAIN``; an unreadable angle-addr gives the
    domain ``SYNTAX_ERROR``; a bad route ``INVALID_ROUTE``; a bare word list is a display name.
    """

    def __init__(self, value: bytes) -> None:
        self.cur = _Cursor(value, keep_comments=True, nul_replacement=NUL_REPLACEMENT)
        self.out: list[Address] = []
        self.addr = Address()
        self.invalid = False
        self.buf = bytearray()

    def _add(self) -> None:
        self.out.append(self.addr)
        self.addr = Address()
        self.invalid = False

    def _add_fixed(self) -> None:
        if self.addr.mailbox is None:
            self.addr.mailbox = b"MISSING_MAILBOX"
        if not self.addr.domain:
            self.addr.domain = b"MISSING_DOMAIN"
        self._add()

    def _nonstrict_dot_atom(self) -> int:
        cur, ret = self.cur, -1
        while True:
            while cur.cur() == _DOT:
                self.buf += b"."
                cur.pos += 1
                if cur.pos == cur.end:
                    return 0
                ret = 1
            if cur.cur() == 0x40:
                break
            ret = cur.atom(self.buf)
            if not (ret > 0 and cur.cur() == _DOT):
                break
        return ret

    def _local_part(self) -> int:
        del self.buf[:]
        if self.cur.cur() == _DQUOTE:
            ret = self.cur.quoted_string(self.buf)
        else:
            ret = self._nonstrict_dot_atom()
        if ret < 0:
            return -1
        self.addr.mailbox = bytes(self.buf)
        return ret

    def _domain(self) -> int:
        del self.buf[:]
        ret = self.cur.domain(self.buf)
        if ret < 0:
            return -1
        self.addr.domain = bytes(self.buf)
        return ret

    def _domain_list(self) -> int:
        cur = self.cur
        del self.buf[:]
        while True:
            if cur.pos >= cur.end:
                return 0
            if cur.data[cur.pos] != 0x40:
                break
            if self.buf:
                self.buf += b","
            self.buf += b"@"
            ret = cur.domain(self.buf)
            if ret <= 0:
                return ret
            while cur.skip_lwsp() > 0 and cur.data[cur.pos] == 0x2C:
                cur.pos += 1
        self.addr.route = bytes(self.buf)
        return 1

    def _angle_addr(self) -> int:
        cur = self.cur
        cur.pos += 1
        if cur.skip_lwsp() <= 0:
            return -1
        if cur.cur() == 0x40:
            if self._domain_list() > 0 and cur.cur() == 0x3A:
                cur.pos += 1
            else:
                self.addr.route = b"INVALID_ROUTE"
                if cur.pos >= cur.end:
                    return -1
            if cur.skip_lwsp() <= 0:
                return -1
        if cur.cur() != 0x3E:
            if self._local_part() <= 0:
                return -1
            if cur.cur() == 0x40:
                if self._domain() <= 0:
                    return -1
        if cur.cur() != 0x3E:
            return -1
        cur.pos += 1
        return cur.skip_lwsp()

    def _name_addr(self) -> int:
        cur = self.cur
        del self.buf[:]
        if cur.phrase(self.buf) <= 0 or cur.cur() != 0x3C:
            return -1
        self.addr.name = bytes(self.buf) or None
        if self._angle_addr() < 0:
            self.addr.domain = b"SYNTAX_ERROR"
            self.invalid = True
        return 1 if cur.pos < cur.end else 0

    def _addr_spec(self) -> int:
        cur = self.cur
        assert cur.last_comment is not None
        del cur.last_comment[:]
        quoted = cur.cur() == _DQUOTE
        ret = self._local_part()
        if ret <= 0:
            self.invalid = True
        ret2 = -2
        if ret != 0 and cur.cur() == 0x40:
            ret2 = self._domain()
            if ret2 <= 0:
                ret = ret2
        if cur.last_comment:
            self.addr.name = bytes(cur.last_comment)
        elif ret2 == -2:
            # "user" alone is a mailbox; "some words" are a display name without an address
            self.buf += b" "
            mark = len(self.buf)
            cur.phrase(self.buf)
            if len(self.buf) != mark:
                self.addr.mailbox = None
                self.addr.name = bytes(self.buf)
            elif not quoted:
                self.addr.domain = b""
            self.invalid = True
            ret = -1
        return ret

    def _mailbox(self) -> int:
        start = self.cur.pos
        ret = self._name_addr()
        if ret < 0:
            self.cur.pos = start
            ret = self._addr_spec()
            a = self.addr
            if self.invalid and a.name is None and a.mailbox is not None and a.domain is None:
                a.name, a.mailbox = a.mailbox, None
        self._add_fixed()
        return ret

    def _group(self) -> int:
        cur = self.cur
        del self.buf[:]
        if cur.phrase(self.buf) <= 0 or cur.cur() != 0x3A:
            return -1
        cur.pos += 1
        ret = cur.skip_lwsp()
        self.addr.mailbox = bytes(self.buf)
        self._add()  # RFC 3501 §7.4.2: group start (NIL NIL group-name NIL)
        if ret > 0 and cur.cur() != 0x3B:
            while True:
                self._mailbox()
                if cur.cur() != 0x2C:
                    break
                cur.pos += 1
                if cur.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if cur.cur() != 0x3B:
                ret = -1
            else:
                cur.pos += 1
                ret = cur.skip_lwsp()
        self._add()  # group end (NIL NIL NIL NIL)
        return 0 if ret == 0 else 1

    def _address(self) -> int:
        start = self.cur.pos
        ret = self._group()
        if ret < 0:
            self.cur.pos = start
            ret = self._mailbox()
        return ret

    def parse(self) -> list[Address]:
        cur = self.cur
        if cur.skip_lwsp() <= 0:
            return self.out
        while True:
            if self._address() == 0:
                break
            if cur.cur() != 0x2C:
                break
            cur.pos += 1
            ret = cur.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self._add_fixed()
                break
        return self.out


def parse_addresses(value: bytes) -> list[Address]:
    """An address-list header value (From, To, Cc, …: RFC 5322 §3.4) as IMAP address structures.

    ``value``: the unfolded-or-folded field body as bytes. Returns the addresses in order, with
    group start/end markers (RFC 3501 §7.4.2); display names are not RFC 2047-decoded. Never raises.
    """
    return _AddressParser(value).parse()
