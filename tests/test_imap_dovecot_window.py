"""The window's FETCH answers for the shared corpus, byte for byte against Dovecot's ``imap`` binary
(tests/support/dovecot.py) on the same messages: ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE,
HEADER.FIELDS (Apple Mail's list), HEADER.FIELDS.NOT, TEXT, part 1 and the whole message.

Each message goes through the real ingest pipeline as the MX stores it (CRLF, as SMTP delivers it),
then is fetched over TLS. The one documented difference (parser/imap_structure.py, RFC 3501 §6.4.5:
no blank line is added to the HEADER.FIELDS of a header that has none) is allowed exactly.
"""

from __future__ import annotations

import re

import pytest

from tests.support import dovecot
from tests.support.dovecot import _fetch_items
from tests.support.imap_fixtures import imap  # noqa: F401
from tests.support.imap import Transcript, unique_domain
from tests.support.corpus import CORPUS

FIELDS = "DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE IN-REPLY-TO REPLY-TO X-PRIORITY"
ITEMS = (f"ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({FIELDS})] "
         f"BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED DKIM-SIGNATURE)] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[]")
MAX_BYTES = 300 * 1024

pytestmark = pytest.mark.timeout(600)


def _corpus() -> list[bytes]:
    out = []
    for path in sorted(CORPUS.rglob("*.eml")):
        raw = path.read_bytes()
        if len(raw) <= MAX_BYTES:
            out.append(re.sub(rb"\r?\n", b"\r\n", raw))
    return out


def _header_fields_difference(ours: bytes, theirs: bytes) -> bool:
    """Dovecot adds an empty line to a header that has none; we do not (RFC 3501 §6.4.5)."""
    m_o = re.match(rb"\{(\d+)\}\r\n", ours)
    m_t = re.match(rb"\{(\d+)\}\r\n", theirs)
    return bool(m_o and m_t and int(m_t.group(1)) == int(m_o.group(1)) + 2
                and theirs[m_t.end():] == ours[m_o.end():] + b"\r\n")


def test_corpus_fetch_matches_dovecot(imap):
    if not dovecot.available():
        pytest.fail("dovecot-imapd is not installed: run scripts/setup-test-env")
    messages = _corpus()
    domain = unique_domain("dc")
    imap.domain(domain)
    for raw in messages:
        imap.deliver(raw, [f"bob@{domain}"])
    t = Transcript(imap.port, imap.cert, timeout=120)
    try:
        t.login(imap.password(domain))
        t.cmd(b"s EXAMINE INBOX")
        ours = _fetch_items(t.cmd(b"f FETCH 1:* (" + ITEMS.encode() + b")"), len(messages))
    finally:
        t.close()
    theirs = dovecot.dovecot_fetch(messages, ITEMS)
    differences = []
    for n, (o, d) in enumerate(zip(ours, theirs), 1):
        for name, value in d.items():
            mine = o.get(name)
            if mine == value:
                continue
            if name.startswith("BODY[HEADER.FIELDS (") and mine is not None and _header_fields_difference(mine, value):
                continue
            differences.append((n, name, (mine or b"")[:200], value[:200]))
    assert not differences, f"{len(differences)} differences: " + "\n".join(map(repr, differences[:12]))
    assert len(ours) == len(messages) > 400
