"""IMAP structures: the RFC 3501 rules on hand-made messages, robustness, and ingest wiring.

Byte-for-byte parity with Dovecot over the corpus and generated hostile mail is in
tests/test_imap_structure_dovecot.py; here each rule is checked on a message made to show it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from delivery.links import LinkSigner
from delivery.sender import AsyncWebhookSender
from inbound.pipeline import IngestPipeline
from inbound.types import AuthResults, SmtpEnvelope
from parser.imap_structure import compute, header_fields, wire_text
from store.blobs import LocalBlobStore
from store.crypto import SecretBox
from store.domains import add_domain
from store.imap_structures import structures_for
from store.messages import Recipient, get_message


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def test_envelope_keeps_header_text_raw_and_marks_groups():
    raw = crlf("Date: Wed, 17 May 2000 22:31:57 -0400 (EDT)\n"
               "Subject: =?utf-8?q?caf=C3=A9?= menu\n"
               "From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\n"
               "To: Team: a@example.com, \"B, Bee\" <b@example.com>;, c@example.net\n"
               "Cc: undisclosed-recipients:;\n"
               "Message-ID: <m1@example.org>\n\nbody\n")
    env = compute(raw).envelope
    # RFC 3501 §7.4.2: strings as in the header (no RFC 2047 decoding), Date verbatim; Sender and
    # Reply-To default to From; a group is (NIL NIL "name" NIL) ... (NIL NIL NIL NIL).
    frm = b'(("=?utf-8?q?J=C3=BCrgen?=" NIL "j" "example.org"))'
    assert env == (b'("Wed, 17 May 2000 22:31:57 -0400 (EDT)" "=?utf-8?q?caf=C3=A9?= menu" '
                   + frm + b" " + frm + b" " + frm + b" "
                   b'((NIL NIL "Team" NIL)(NIL NIL "a" "example.com")("B, Bee" NIL "b" "example.com")'
                   b'(NIL NIL NIL NIL)(NIL NIL "c" "example.net")) '
                   b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL "<m1@example.org>")')


def test_envelope_without_date_subject_or_addresses_is_nil():
    assert compute(b"X-Only: header\r\n\r\nbody\r\n").envelope == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_eight_bit_and_specials_go_out_as_literals():
    raw = "Subject: caf\u00e9 \"quoted\"\r\nFrom: Ann <a@example.org>\r\n\r\n".encode()
    env = compute(raw).envelope
    subject = 'caf\u00e9 "quoted"'.encode()
    # RFC 3501 §4.3: 8-bit text cannot be a quoted string, so it is a literal.
    assert env.startswith(b"(NIL {%d}\r\n" % len(subject) + subject + b" ")


NESTED = crlf("""From: a@example.org
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain

hello
--outer
Content-Type: message/rfc822

Subject: inner
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

plain
--inner
Content-Type: text/html

<p>html</p>
--inner--

--outer
Content-Type: message/rfc822

Subject: single

just text
--outer--
""")


def test_part_numbers_and_spans_follow_rfc3501_6_4_5():
    s = compute(NESTED)

    def body(n):
        p = s.parts[n]
        return NESTED[p.body_start:p.end]

    def mime(n):
        p = s.parts[n]
        return NESTED[p.header_start:p.body_start]

    assert set(s.parts) == {"TEXT", "1", "2", "2.TEXT", "2.1", "2.2", "3", "3.TEXT", "3.1"}
    assert body("1") == b"hello"
    assert mime("1") == b"Content-Type: text/plain\r\n\r\n"
    assert body("2.1") == b"plain" and body("2.2") == b"<p>html</p>"
    assert mime("2.2") == b"Content-Type: text/html\r\n\r\n"
    # n.TEXT spans the encapsulated message: its header is BODY[n.HEADER], its body BODY[n.TEXT].
    inner = s.parts["2.TEXT"]
    assert NESTED[inner.header_start:inner.body_start].startswith(b"Subject: inner\r\n")
    assert body("2").startswith(b"Subject: inner\r\n") and body("2").endswith(b"--inner--\r\n")
    # A non-multipart encapsulated message has a part 1: its body.
    assert body("3.1") == b"just text" and body("3.TEXT") == b"just text"
    assert s.header_block == NESTED[:NESTED.index(b"\r\n\r\n") + 4]
    assert body("TEXT") == NESTED[len(s.header_block):]
    assert s.bodystructure.count(b'"message" "rfc822"') == 2


def test_single_part_message_has_part_one():
    raw = b"Subject: x\r\n\r\nline one\r\nline two\r\n"
    s = compute(raw)
    assert s.parts["1"] == s.parts["TEXT"]
    assert s.bodystructure == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2 NIL NIL NIL NIL)'


def test_bare_lf_message_has_offsets_into_its_own_bytes_and_crlf_sizes():
    lf = NESTED.replace(b"\r\n", b"\n")
    a, b = compute(NESTED), compute(lf)
    # Sizes count what is sent (CRLF lines, RFC 3501 §2.3.4), so both versions describe alike.
    assert a.bodystructure == b.bodystructure and a.envelope == b.envelope and a.size == b.size == len(NESTED)
    for n, span in b.parts.items():
        other = a.parts[n]
        assert wire_text(lf[span.header_start:span.body_start]) == NESTED[other.header_start:other.body_start]
        assert wire_text(lf[span.body_start:span.end]) == NESTED[other.body_start:other.end]


def test_missing_boundary_and_missing_close_delimiter():
    no_param = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nbody\r\n"
    s = compute(no_param)
    # A multipart without a boundary cannot be split: one empty text/plain stands in for the parts.
    assert s.bodystructure.startswith(b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
                                      b'"mixed" NIL')
    unclosed = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nlast part\r\n"
    s = compute(unclosed)
    assert unclosed[s.parts["1"].body_start:s.parts["1"].end] == b"last part\r\n"


def test_header_fields_keep_order_text_and_folding():
    block = crlf("Subject: one\n two\nFrom: a@example.org\nX-Other: z\nsubject: again\n\n")
    # RFC 3501 §6.4.5: the matching fields as they were, then the blank line; names match
    # case-insensitively.
    assert header_fields(block, ["SUBJECT"]) == crlf("Subject: one\n two\nsubject: again\n\n")
    assert header_fields(block, ["subject", "x-other"], exclude=True) == crlf("From: a@example.org\n\n")
    assert header_fields(block, ["nothing"]) == b"\r\n"
    assert header_fields(b"Subject: no body", ["subject"]) == b"Subject: no body"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.lists(st.sampled_from([
    b"\r\n", b"\n", b"\r", b"--b", b"--b--", b"Content-Type: multipart/mixed; boundary=b", b":", b" ",
    b"Content-Type: message/rfc822", b"MIME-Version: 1.0", b"From: ", b"<", b">", b'"', b"(", b"\\",
    b"\x00", b"\xff", b"=?", b";", b"boundary*0=", b"Content-Type: multipart/digest; boundary=b"]),
    max_size=80).map(b"".join))
def test_compute_never_raises_and_spans_stay_inside_the_message(raw):
    s = compute(raw)
    assert s.errors == ()
    assert s.bodystructure.startswith(b"(") and s.envelope.startswith(b"(")
    for span in s.parts.values():
        assert 0 <= span.header_start <= span.body_start <= span.end <= len(raw)
    header_fields(s.header_block, ["from", "subject"])


def test_ingest_stores_the_structure_of_the_bytes_as_stored(db, tmp_path):
    """The pipeline computes the structure in its (spawn) parse pool, on the raw with our trace
    fields prepended, and commits it with the message row."""
    domain = add_domain(db, "example.com")
    blobs = LocalBlobStore(tmp_path / "blobs")
    key = b"k" * 32
    raw = NESTED

    async def authenticate(envelope, data):
        return AuthResults(header="Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=example.org")

    async def run():
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pipeline = IngestPipeline(db=db, blobs=blobs, links=LinkSigner(key, "http://127.0.0.1", 60),
                                      zr_sender=AsyncWebhookSender(5), secret_box=SecretBox(key),
                                      parse_executor=pool, authenticate=authenticate)
            env = SmtpEnvelope(mail_from="a@example.org", rcpt_to=("team@example.com",), client_ip="127.0.0.1",
                               helo="client", tls=False, received_at=datetime.now(timezone.utc))
            return await pipeline.run(env, raw, [Recipient("team@example.com", domain, ("team@example.com",))])

    outcome = asyncio.run(run())
    assert outcome.outcome == "accepted", outcome
    msg = get_message(db, outcome.message_ids[0])
    stored = blobs.get(msg.raw_key)
    assert stored.startswith(b"Authentication-Results: ") and stored.endswith(raw)
    row = structures_for(db, [msg.transaction_id])[msg.transaction_id]
    assert row.header_block.startswith(b"Authentication-Results: ")
    assert row.bodystructure == compute(raw).bodystructure
    assert row.size == len(stored)
    span = row.parts["2.2"]
    assert stored[span.body_start:span.end] == b"<p>html</p>"
