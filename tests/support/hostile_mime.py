"""Seeded generator of awkward, often malformed MIME messages for comparison tests.

``messages(seed, count)`` returns reproducible messages built from the cases IMAP structure code
gets wrong: group syntax and broken address lists, RFC 2047 words and raw 8-bit in headers,
quoted-pairs, folding, duplicate fields, missing Date/Subject, broken Content-Type values, RFC 2231
parameter continuations (with gaps), missing or similar boundaries, missing close-delimiters,
preambles and epilogues, nested message/rfc822, multipart/digest, empty parts, NUL and bare CR,
CRLF / LF / mixed line ends. Nothing here is an expected answer: tests compare two
implementations on these inputs.
"""

from __future__ import annotations

import random

NAMES = [b"Ann Example", b'"Doe, John"', b"=?utf-8?q?J=C3=BCrgen?=", b"\xc3\x9cml\xc3\xa4ut", b'"Q\\"uote\\\\d"',
         b"Dr. No", b"", b"(comment) Real", b'"a\tb  c"', b"=?iso-8859-1?B?SGFsbG8=?= Welt"]
MAILBOXES = [b"ann@example.org", b"x.y@sub.example.com", b'"odd local"@example.net', b"a..b@example.com",
             b"user@[192.0.2.1]", b"user", b"@example.com", b"user@", b"\xc3\xa4@example.de", b"a@b (Comment)"]


def _address(r: random.Random) -> bytes:
    kind = r.randrange(12)
    mb = r.choice(MAILBOXES)
    name = r.choice(NAMES)
    if kind < 4:
        return name + b" <" + mb + b">" if name else b"<" + mb + b">"
    if kind < 6:
        return mb
    if kind == 6:
        return name + b" <@route1,@route2:" + mb + b">"
    if kind == 7:
        members = b", ".join(_address(r) for _ in range(r.randrange(3)))
        return r.choice([b"Team", b"undisclosed-recipients", b'"Quoted Group"']) + b": " + members + b";"
    if kind == 8:
        return name + b" <" + mb  # unterminated angle-addr
    if kind == 9:
        return b'"unterminated ' + mb
    if kind == 10:
        return b"just some words"
    return b"<>"


def _address_list(r: random.Random) -> bytes:
    sep = r.choice([b", ", b",\r\n ", b" , ", b",,"])
    return sep.join(_address(r) for _ in range(1 + r.randrange(3)))


def _text(r: random.Random) -> bytes:
    return r.choice([
        b"Hello world", b"=?utf-8?B?w6TDtsO8?= and =?iso-8859-1?q?caf=E9?=", b"tab\there  double  space",
        b'quote " and \\ backslash', b'many "q" "u" "o" "t" "e" "s"', b"raw \xc3\xa9 utf-8", b"latin1 \xe9",
        b"", b"   ", b"folded\r\n continued\r\n\tagain", b"nul\x00byte", b"bare\rcr", b"Re: [list] (x)",
        b"trailing space ", b"NIL"])


def _params(r: random.Random) -> bytes:
    out = b""
    for _ in range(r.randrange(4)):
        out += r.choice([
            b'; name="file.txt"', b"; name=plain.bin", b"; charset=UTF-8", b'; charset="iso-8859-1"',
            b"; name*=utf-8''%E2%82%AC.txt", b'; name*0="part"; name*1="two.txt"',
            b"; title*0*=us-ascii'en'This%20is; title*1*=%20split", b"; name*1=gap", b"; format=flowed",
            b'; x="with \\"escaped\\" quote"', b"; novalue=", b"; =junk", b";;", b"; name==?utf-8?q?a?=",
            b'; q="nul\x00in"', b"; size=123", b'; filename="C:\\\\dir\\\\f.txt"'])
    return out


def _header(r: random.Random, fields: list[bytes], eol: bytes) -> bytes:
    return b"".join(f.replace(b"\r\n", eol) + eol for f in fields)


def _leaf(r: random.Random, depth: int, digest_child: bool = False) -> tuple[list[bytes], bytes]:
    fields: list[bytes] = []
    kind = r.randrange(10)
    if digest_child and r.random() < 0.5:
        return fields, b"From: x@y\r\nSubject: in digest\r\n\r\nbody\r\n"
    if kind < 4:
        fields.append(b"Content-Type: text/plain" + _params(r))
    elif kind < 6:
        fields.append(r.choice([b"Content-Type: application/octet-stream", b"Content-Type: image/png",
                                b"Content-Type: TEXT/HTML", b"Content-Type: text", b"Content-Type: text/",
                                b"Content-Type: ;charset=x", b"Content-Type:", b"Content-Type: multipart",
                                b"Content-Type: message/rfc822 junk", b"Content-Type: x/y (comment)"])
                      + _params(r))
    elif kind < 7:
        pass  # no Content-Type at all
    if r.random() < 0.5:
        fields.append(r.choice([b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: 7-bit",
                                b"Content-Transfer-Encoding: quoted-printable; x",
                                b"Content-Transfer-Encoding:", b"Content-transfer-encoding: BINARY"]))
    if r.random() < 0.4:
        fields.append(r.choice([b"Content-Disposition: attachment", b"Content-Disposition: inline",
                                b"Content-Disposition: ; filename=x", b"Content-Disposition: ATTACHMENT"])
                      + _params(r))
    if r.random() < 0.2:
        fields.append(b"Content-Disposition: inline; filename=second.txt")
    if r.random() < 0.3:
        fields.append(r.choice([b"Content-Language: en, de", b"Content-Language: en-US",
                                b"Content-Language: (c) fr", b"Content-Language: ,,"]))
    if r.random() < 0.2:
        fields.append(b"Content-Location: http://example.com/\r\n a b")
    if r.random() < 0.3:
        fields.append(b"Content-ID: <" + bytes(str(r.randrange(10**6)), "ascii") + b"@example>")
    if r.random() < 0.2:
        fields.append(b"Content-Description: " + _text(r))
    if r.random() < 0.1:
        fields.append(b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==")
    body = r.choice([b"", b"line\r\n", b"two\r\nlines\r\n", b"no final newline", b"\x00\x01 binary\r\n",
                     b"=E9t=E9\r\n", b"--not-a-boundary\r\n", b"8bit \xc3\xa9\r\n" * 3])
    return fields, body


def _entity(r: random.Random, depth: int, eol: bytes, digest_child: bool = False) -> bytes:
    """A MIME entity (header + body) as bytes."""
    kind = r.randrange(10) if depth < 4 else 0
    mime = [b"MIME-Version: 1.0"] if r.random() < 0.7 else []
    if kind < 5:
        fields, body = _leaf(r, depth, digest_child)
        return _header(r, mime + fields, eol) + eol + body.replace(b"\r\n", eol)
    if kind < 8:
        return _multipart(r, depth, eol, mime)
    inner = _message(r, depth + 1, eol)
    ct = r.choice([b"Content-Type: message/rfc822", b"Content-Type: MESSAGE/RFC822; name=fwd.eml"])
    if r.random() < 0.1:
        return _header(r, mime + [ct], eol)  # header only, no empty line, no body
    return _header(r, mime + [ct], eol) + eol + inner


def _multipart(r: random.Random, depth: int, eol: bytes, mime: list[bytes]) -> bytes:
    boundary = r.choice([b"b1", b"=_part_" + bytes(str(depth), "ascii"), b"simple", b"simple2", b"x" * 90,
                         b"with space", b"----=_NextPart_000"])
    subtype = r.choice([b"mixed", b"alternative", b"related", b"digest", b"signed", b"report"])
    quoted = r.random() < 0.5
    bparam = b'boundary="' + boundary + b'"' if quoted else b"boundary=" + boundary.replace(b" ", b"_")
    if not quoted:
        boundary = boundary.replace(b" ", b"_")
    fields = mime + [b"Content-Type: multipart/" + subtype + b";\r\n\t" + (bparam if r.random() < 0.9 else b"x=y")
                     + _params(r)]
    out = _header(r, fields, eol) + eol
    if r.random() < 0.3:
        out += b"This is a preamble." + eol
    for _ in range(r.randrange(4)):
        sep = b"--" + boundary + r.choice([b"", b"", b" ", b"\t", b"garbage"])
        out += sep + eol + _entity(r, depth + 1, eol, digest_child=subtype == b"digest") + eol
    if r.random() < 0.8:
        out += b"--" + boundary + b"--" + eol
        if r.random() < 0.3:
            out += b"epilogue text" + eol
    return out


def _message(r: random.Random, depth: int, eol: bytes) -> bytes:
    fields = []
    if r.random() < 0.85:
        fields.append(b"Date: " + r.choice([b"Wed, 17 May 2000 22:31:57 -0400", b"17 May 2000 (comment)",
                                            b"Wed,\r\n 17 May 2000 22:31:57 -0400", b"garbage \xe9", b""]))
    for name in (b"From", b"To", b"Cc", b"Bcc", b"Sender", b"Reply-To"):
        if r.random() < (0.9 if name in (b"From", b"To") else 0.25):
            fields.append(name + b": " + _address_list(r))
    if r.random() < 0.15:
        fields.append(b"From: second@example.org")
    if r.random() < 0.85:
        fields.append(b"Subject: " + _text(r))
    if r.random() < 0.15:
        fields.append(b"Subject: second subject")
    if r.random() < 0.7:
        fields.append(b"Message-ID: " + r.choice([b"<abc@example.com>", b'<"quoted"@x>', b"", b"no-angle@x"]))
    if r.random() < 0.3:
        fields.append(b"In-Reply-To: <parent@example.com>\r\n (comment)")
    if r.random() < 0.2:
        fields.append(r.choice([b"X-No-Colon-Line", b"Subject : spaced name", b"X-Empty:", b" leading-space: v"]))
    r.shuffle(fields)
    return _header(r, fields, eol) + _entity(r, depth, eol)


def messages(seed: int, count: int) -> list[bytes]:
    """``count`` reproducible messages (CRLF, LF or mixed line ends)."""
    r = random.Random(seed)
    out = []
    for _ in range(count):
        eol = r.choice([b"\r\n", b"\r\n", b"\n"])
        msg = _message(r, 0, eol)
        if eol == b"\r\n" and r.random() < 0.1:
            msg = msg.replace(b"\r\n\r\n", b"\n\n", 1)  # mixed line ends
        out.append(msg)
    return out
