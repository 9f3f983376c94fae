"""ENVELOPE, BODYSTRUCTURE, BODY, part sections and HEADER.FIELDS compared with Dovecot, byte for byte.

Every corpus message is given to Dovecot's own ``imap`` binary (Debian ``dovecot-imapd``, PREAUTH
over stdin/stdout, tests/support/dovecot.py) twice: CRLF-normalised as SMTP delivers it, and as the
file is (bare LF, mixed, bare CR); so are 600 generated hostile messages (tests/support/
hostile_mime.py: broken addresses, groups, 8-bit and encoded words, broken Content-Type values,
RFC 2231 gaps, missing and look-alike boundaries, nested message/rfc822, digests, NUL, bare CR).
What we compute at ingest must equal what Dovecot answers.

Documented differences (asserted exactly, so any other difference fails):
- HEADER.FIELDS of a header that has no empty line after it (a message with no body and no
  blank line, or an encapsulated message whose blank line is the next boundary's CRLF, RFC 2046
  §5.1.1): Dovecot appends an empty line anyway; RFC 3501 §6.4.5 says "the blank line is included
  in all header fetches, except in the case of a message which has no body and no blank line",
  so we do not (as Dovecot itself does for BODY[HEADER] and HEADER.FIELDS.NOT).
"""

from __future__ import annotations

import re

import pytest

from parser.imap_structure import ImapStructure, compute, header_fields, wire_text
from tests.support import dovecot, hostile_mime
from tests.support.corpus import CORPUS

APPLE_MAIL = ("DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE BCC IN-REPLY-TO "
              "REPLY-TO LIST-POST X-PRIORITY")
THUNDERBIRD = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
               "In-Reply-To Content-Type Reply-To")
NOT_FIELDS = "Received DKIM-Signature X-Spam-Status"
GENERATED = 600

pytestmark = pytest.mark.timeout(900)


def _crlf(raw: bytes) -> bytes:
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes]]:
    files = sorted(CORPUS.rglob("*.eml"))
    assert len(files) >= 400, f"corpus not found at {CORPUS}"
    return [(str(f.relative_to(CORPUS)), f.read_bytes()) for f in files]


@pytest.fixture(scope="module", params=["corpus-crlf", "corpus-as-is", "generated"])
def case(request, corpus):
    """(names, messages, our structures, Dovecot's answers) for one set of messages: the corpus
    CRLF-normalised (as SMTP delivers it), the corpus files as they are, or generated hostile MIME."""
    if not dovecot.available():
        pytest.fail("Dovecot's imap binary is missing: install dovecot-imapd (scripts/apt-packages.txt)")
    if request.param == "generated":
        messages = hostile_mime.messages(seed=20261122, count=GENERATED)
        names = [f"generated #{i}" for i in range(len(messages))]
    else:
        names = [n for n, _ in corpus]
        messages = [_crlf(raw) if request.param == "corpus-crlf" else raw for _, raw in corpus]
    ours = [compute(m) for m in messages]
    items = []
    for m, s in zip(messages, ours):
        its = ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE",
               f"BODY.PEEK[HEADER.FIELDS ({APPLE_MAIL})]", f"BODY.PEEK[HEADER.FIELDS ({THUNDERBIRD})]",
               f"BODY.PEEK[HEADER.FIELDS.NOT ({NOT_FIELDS})]"]
        its += [f"BODY.PEEK[{section}]" for section in _sections(s)]
        its += [f"BODY.PEEK[{n[:-5]}.HEADER.FIELDS (SUBJECT FROM)]" for n in s.parts if n.endswith(".TEXT")]
        items.append(its)
    return names, messages, ours, dovecot.dovecot_fetch(messages, items)


def _sections(s: ImapStructure) -> dict[str, tuple[int, int]]:
    """Every section our spans can serve → (start, end) in the raw message."""
    out: dict[str, tuple[int, int]] = {}
    for num, span in s.parts.items():
        if num == "TEXT":
            out["HEADER"] = (span.header_start, span.body_start)
            out["TEXT"] = (span.body_start, span.end)
        elif num.endswith(".TEXT"):
            out[num[:-5] + ".HEADER"] = (span.header_start, span.body_start)
            out[num] = (span.body_start, span.end)
        else:
            out[num] = (span.body_start, span.end)
            out[num + ".MIME"] = (span.header_start, span.body_start)
    return out


def _literal_value(wire: bytes) -> bytes:
    if wire.startswith(b"{"):
        return wire[wire.index(b"}") + 3:]
    assert wire.startswith(b'"'), wire[:50]
    return wire[1:-1]


def test_envelope_bodystructure_body_and_size_match_dovecot(case):
    names, messages, ours, theirs = case
    mismatches = []
    for name, s, d in zip(names, ours, theirs):
        for item, value in (("ENVELOPE", s.envelope), ("BODYSTRUCTURE", s.bodystructure), ("BODY", s.body),
                            ("RFC822.SIZE", b"%d" % s.size)):
            if d[item] != value:
                mismatches.append((name, item, d[item][:300], value[:300]))
    print(f"\n{len(names) - len({m[0] for m in mismatches})}/{len(names)} messages identical to Dovecot "
          "(ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE)")
    assert mismatches == []
    assert all(not s.errors for s in ours)


def test_part_sections_cut_from_spans_match_dovecot(case):
    """BODY[n], BODY[n.MIME], BODY[HEADER], BODY[TEXT], BODY[n.HEADER], BODY[n.TEXT] from our offsets."""
    names, messages, ours, theirs = case
    checked, mismatches = 0, []
    for name, raw, s, d in zip(names, messages, ours, theirs):
        for section, (start, end) in _sections(s).items():
            checked += 1
            got = wire_text(raw[start:end])
            if _literal_value(d[f"BODY[{section}]"]) != got:
                mismatches.append((name, section))
    print(f"\n{checked - len(mismatches)}/{checked} sections identical to Dovecot")
    assert mismatches == []
    assert checked > len(names)


def test_header_fields_match_dovecot(case):
    names, messages, ours, theirs = case
    checked, identical, documented, mismatches = 0, 0, 0, []
    for name, raw, s, d in zip(names, messages, ours, theirs):
        wanted = {
            f"BODY[HEADER.FIELDS ({APPLE_MAIL})]": (s.header_block, APPLE_MAIL.split(), False),
            f"BODY[HEADER.FIELDS ({THUNDERBIRD.upper()})]": (s.header_block, THUNDERBIRD.split(), False),
            f"BODY[HEADER.FIELDS.NOT ({NOT_FIELDS.upper()})]": (s.header_block, NOT_FIELDS.split(), True),
        }
        for num, span in s.parts.items():
            if num.endswith(".TEXT"):
                wanted[f"BODY[{num[:-5]}.HEADER.FIELDS (SUBJECT FROM)]"] = (
                    raw[span.header_start:span.body_start], ["Subject", "From"], False)
        for item, (block, fields, exclude) in wanted.items():
            checked += 1
            got, dove = header_fields(block, fields, exclude), _literal_value(d[item])
            if got == dove:
                identical += 1
            elif not exclude and not _ends_with_empty_line(block) and dove == got + b"\r\n":
                documented += 1  # RFC 3501 §6.4.5: no blank line when the message has none
            else:
                mismatches.append((name, item, dove[-80:], got[-80:]))
    print(f"\n{identical}/{checked} HEADER.FIELDS answers identical to Dovecot, {documented} differ only "
          "by the empty line RFC 3501 §6.4.5 leaves out")
    assert mismatches == []
    assert identical > len(names)


def _ends_with_empty_line(block: bytes) -> bool:
    return block in (b"\n", b"\r\n") or block.endswith((b"\n\n", b"\n\r\n"))
