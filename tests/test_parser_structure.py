"""parse() reads MIME structure exactly as flanker does, from the bytes (parser.mime_tokens).

The oracle is flanker itself (``flanker.mime.from_string`` on the message read as latin-1, which is
what ``parse()`` called before the byte tokenizer) and, for the messages flanker refuses, the
stdlib ``email`` package: never stored output of our own code. Inputs: every corpus message as it
is and with CRLF line ends, hostile generated MIME (tests/support/hostile_mime.py), the bench's
generated mix, and hypothesis-mutated corpus messages (``MAILKITE_FUZZ_EXAMPLES=5000`` for a longer
session by hand).
"""

from __future__ import annotations

import binascii
import hashlib
import os
import sys
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

import pytest
from flanker import mime
from flanker.mime.message import scanner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parser import parse
from parser.charsets import decode_text
from parser.limits import MAX_STRUCTURE_LINES, structure_cut
from parser.mime_tokens import parse_tree, tokenize
from tests.support.hostile_mime import messages as hostile_messages
from tests.support.parse_snapshot import to_crlf
from tests.support.corpus import CORPUS

REPO = Path(__file__).resolve().parents[1]
EMLS = sorted(CORPUS.glob("**/*.eml"))


def _mix(count: int) -> list[bytes]:
    sys.path.insert(0, str(REPO / "bench"))
    from parse import generated_mix  # bench/parse.py

    return generated_mix(count)


def _inputs() -> list[tuple[str, bytes]]:
    out = []
    for p in EMLS:
        raw = p.read_bytes()
        out.append((str(p.relative_to(CORPUS)), raw))
        out.append(("crlf:" + str(p.relative_to(CORPUS)), to_crlf(raw)))
    out += [(f"hostile:{i}", m) for i, m in enumerate(hostile_messages(4, 1500))]
    out += [(f"mix:{i}", m) for i, m in enumerate(_mix(12))]
    return out


INPUTS = _inputs()


def _token_view(tokens) -> list:
    out = []
    for t in tokens:
        if isinstance(t, scanner.Boundary):
            out.append(("boundary", t.value, t.start, t.end, t.final))
        else:
            out.append(("ctype", t.value, dict(t.params)))
    return out


def _flanker_tokens(raw: bytes):
    try:
        return _token_view(scanner.tokenize(raw.decode("latin-1"))), None
    except Exception as exc:  # noqa: BLE001 - compared with what ours reports
        return None, exc


def test_tokens_are_flankers_tokens():
    assert len(INPUTS) > 2400
    refused = 0
    for name, raw in INPUTS:
        expected, error = _flanker_tokens(raw)
        found = tokenize(raw, len(raw) + 1)
        assert found.end == len(raw)
        if error is not None:
            refused += 1
            assert type(found.error) is type(error) and str(found.error) == str(error), name
            continue
        assert found.error is None, name
        assert _token_view(found.tokens) == expected, name
    assert refused < len(INPUTS) // 10


def _shape(part) -> tuple:
    """Everything of a flanker part tree that parse() reads: types, offsets, header fields."""
    c = part._container
    try:
        c._load_headers()
        head = (c._body_start, [(k, str(v)) for k, v in c._headers.items()])
    except Exception as exc:  # noqa: BLE001
        head = (type(exc).__name__, str(exc))
    return (part.content_type.value, dict(part.content_type.params), c.start, c.end, head,
            [_shape(p) for p in part.parts], _shape(part.enclosed) if part.enclosed is not None else None)


def _tree_or_error(build):
    try:
        return _shape(build()), None
    except Exception as exc:  # noqa: BLE001
        return None, (type(exc).__name__, str(exc))


def test_trees_are_flankers_trees():
    """The part tree (types, spans, header fields, errors) flanker builds from our tokens and byte
    stream equals the one it builds from its own text copy of the message."""
    for name, raw in INPUTS:
        if len(raw) > 3_000_000:
            continue  # flanker's own reading of the biggest mix messages takes seconds
        ours = _tree_or_error(lambda: parse_tree(raw, tokenize(raw, len(raw) + 1)))
        theirs = _tree_or_error(lambda: mime.from_string(raw.decode("latin-1")))
        assert ours == theirs, name


def test_structure_cut_is_the_limit_pre_scan():
    """The tokenizer stops where parser.limits.structure_cut says the structure limit is reached."""
    bomb = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 2000 + b"--b--\r\n")
    for limit in (10, 200, MAX_STRUCTURE_LINES):
        assert tokenize(bomb, limit).end == structure_cut(bomb, limit)
    assert tokenize(bomb[:400], MAX_STRUCTURE_LINES).end == 400


# -- parse() output against flanker's and the stdlib's readings ---------------------------------

def _flanker_leaves(raw: bytes):
    """(part number, content type, decoded bytes) of every leaf flanker finds, not walking into
    attached messages; None when flanker refuses the message."""
    try:
        root = mime.from_string(raw.decode("latin-1"))
    except Exception:  # noqa: BLE001
        return None
    out = []

    def visit(part, number):
        if part.content_type.is_multipart():
            for i, child in enumerate(part.parts, 1):
                visit(child, f"{number}.{i}" if number else str(i))
            return
        cte = part.headers.get("Content-Transfer-Encoding")
        cte = (getattr(cte, "value", cte) or "7bit").strip().lower()
        stream = part._container  # flanker's offsets of the part (one character per byte)
        stream._load_headers()
        body = raw[stream._body_start:stream.end + 1]
        try:
            if cte == "base64":
                body = binascii.a2b_base64(body)
            elif cte == "quoted-printable":
                body = binascii.a2b_qp(body)
        except binascii.Error:
            body = None  # parse() decodes it leniently; nothing strict to compare with
        out.append((number or "1", f"{part.content_type.main}/{part.content_type.sub}".lower(),
                    part.content_type.params.get("charset"), body))

    visit(root, "")
    return out


def _stdlib_leaves(raw: bytes):
    out = []

    def visit(part, number):
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            for i, child in enumerate(part.get_payload(), 1):
                visit(child, f"{number}.{i}" if number else str(i))
            return
        out.append((number or "1", part.get_content_type(), part.get_content_charset(),
                    part.get_payload(decode=True) or b""))

    visit(message_from_bytes(raw, policy=compat32), "")
    return out


def _sample() -> list[tuple[str, bytes]]:
    return [(n, r) for n, r in INPUTS if not n.startswith("hostile:")][::3] + \
        [(n, r) for n, r in INPUTS if n.startswith("mix:")]


def test_parse_output_agrees_with_flankers_reading_and_the_stdlibs():
    """Attachments (part, type, content) and the text/HTML bodies parse() returns are what flanker
    delimits, transfer-decoded; for a message flanker refuses, what the stdlib reads. A base64 or
    quoted-printable body binascii refuses (parse() then decodes leniently) is left out."""
    compared = stdlib_read = 0
    for name, raw in _sample():
        msg = parse(raw)
        if any("limits:" in e for e in msg.parse_errors):
            continue
        leaves = _flanker_leaves(raw)
        if leaves is None:
            # flanker refused it: parse() read it with the stdlib; its non-text leaves are the
            # attachments (text parts are bodies; message/* are re-serialised by the stdlib).
            assert any("flanker could not parse" in e for e in msg.parse_errors), name
            want = [(p, t, hashlib.sha256(b).hexdigest()) for p, t, _c, b in _stdlib_leaves(raw)
                    if not t.startswith(("text/", "multipart/", "message/"))]
            got = [(a.part, a.content_type, hashlib.sha256(a.content).hexdigest()) for a in msg.attachments
                   if not a.content_type.startswith(("text/", "message/"))]
            assert got == want, name
            stdlib_read += 1
            continue
        by_part = {p: (t, c, b) for p, t, c, b in leaves}
        attached = {a.part for a in msg.attachments}
        for a in msg.attachments:
            ctype, _charset, body = by_part[a.part]
            assert a.content_type == ctype, name
            assert body is None or a.content == body, (name, a.part)
        for kind, got in (("text/plain", msg.text), ("text/html", msg.html)):
            bodies = [(c, b) for p, (t, c, b) in by_part.items() if t == kind and p not in attached]
            if bodies and all(b is not None for _c, b in bodies):
                joined = "\n".join(decode_text(b, c) for c, b in bodies)
                assert got == joined.replace("\r\n", "\n").replace("\r", "\n"), (name, kind)
        compared += 1
    assert compared > 250 and stdlib_read > 5


# -- hypothesis: mutated corpus messages -------------------------------------------------------

SEEDS = [p.read_bytes() for p in EMLS if p.stat().st_size < 20_000][:200]
_BITS = [b"\r\n", b"\n", b"\r\n\r\n", b"--", b"--b\r\n", b"--b--", b"Content-Type: multipart/mixed; boundary=b\r\n",
         b"content-type:  text/plain\r\n", b"CONTENT-TYPE: message/rfc822\r\n\r\n", b"\r", b"\t", b" ", b"\x00",
         b"\xe9", b"Content-Type: multipart/alternative;\r\n\tboundary=\"x\"\r\n\r\n--x\r\n", b"--x--\r\n"]


@st.composite
def _mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data[pos:pos] = draw(st.sampled_from(_BITS))
        else:
            data[pos:pos + draw(st.integers(1, 64))] = b""
    return bytes(data)


@settings(max_examples=int(os.environ.get("MAILKITE_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(_mutated())
def test_mutated_messages_tokenize_and_parse_as_flanker_does(raw):
    expected, error = _flanker_tokens(raw)
    found = tokenize(raw, len(raw) + 1)
    if error is not None:
        assert type(found.error) is type(error)
    else:
        assert _token_view(found.tokens) == expected
        assert _tree_or_error(lambda: parse_tree(raw, found)) == \
            _tree_or_error(lambda: mime.from_string(raw.decode("latin-1")))


@pytest.mark.parametrize("raw", [b"", b"\r\n", b"--", b"\n--b", b"Content-Type: multipart/mixed; boundary=b"])
def test_degenerate_inputs(raw):
    expected, error = _flanker_tokens(raw)
    found = tokenize(raw, MAX_STRUCTURE_LINES)
    assert error is None and _token_view(found.tokens) == expected
    parse(raw).to_json()
