"""parser.parse on the whole corpus and on the MIME shapes real clients send."""

from __future__ import annotations

import json
import pickle

import pytest

from parser import parse
from parser.automated import AutoSubmitted, classify, with_null_sender
from parser.limits import MAX_DEPTH, MAX_HEADERS
from tests.support.corpus import CORPUS

EMLS = sorted(CORPUS.glob("**/*.eml"))


def _load(rel: str) -> bytes:
    return (CORPUS / rel).read_bytes()


def test_every_corpus_message_parses_pickles_and_serialises():
    assert len(EMLS) >= 449
    fallback = []
    for path in EMLS:
        msg = parse(path.read_bytes())
        pickle.loads(pickle.dumps(msg))  # the MX parses in a spawn process pool
        json.dumps(msg.to_json(inline_attachments=True))
        if any("flanker could not parse" in e for e in msg.parse_errors):
            fallback.append(path)
    # The stdlib fallback reads what flanker refuses: text is never dropped.
    for rel in ["enmime/mail/multipart-wo-boundary.eml", "spamscope-mail-parser/mail_malformed_3.eml"]:
        msg = parse(_load(rel))
        assert (msg.text or msg.html), rel
    assert len(fallback) < 30


def test_inline_images_in_multipart_related_keep_content_id():
    msg = parse(_load("zbateson-mail-mime-parser/m0016.eml"))
    inline = [a for a in msg.attachments if a.content_type == "image/png"]
    assert inline and all(a.disposition == "inline" and a.content_id for a in inline)
    assert msg.text and "Hare" in msg.text


def test_forwarded_message_is_one_attachment_with_its_own_header_summary():
    msg = parse(_load("mikel-mail/attachment_emails/attachment_message_rfc822.eml"))
    [fwd] = [a for a in msg.attachments if a.content_type == "message/rfc822"]
    assert fwd.forwarded["subject"] == "Another PDF"
    assert fwd.forwarded["from"]["name"] == "Test Tester"
    assert fwd.to_json()["forwarded"]["date"] == "2005-05-10T17:26:39Z"


def test_calendar_invite_smime_and_tnef_are_kept_as_attachments():
    cal = parse(_load("james-project/jmap/calendar.eml"))
    assert [a.content_type for a in cal.attachments] == ["text/calendar"]
    signed = parse(_load("flanker/signed.eml"))
    sig = [a for a in signed.attachments if "pkcs7-signature" in a.content_type]
    assert sig and sig[0].size > 1000
    tnef = parse(_load("zbateson-mail-mime-parser/m4006.eml"))
    assert any(a.filename == "winmail.dat" and a.content_type == "application/ms-tnef" for a in tnef.attachments)


def test_bounce_is_flagged_automated():
    msg = parse(_load("flanker/bounce/gmail-no-dns.eml"))
    assert msg.auto_submitted.automated and msg.auto_submitted.type == "report"


M = "From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"


def test_every_text_part_of_a_kind_is_joined_in_order():
    raw = (M + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           "--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
           "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
           "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsecond =E9t=E9\r\n"
           "--b--\r\n").encode()
    msg = parse(raw)
    assert msg.text == "first\nsecond été"
    assert [a.content_type for a in msg.attachments] == ["image/png"]


def test_rfc2231_and_rfc2047_filenames_in_other_charsets():
    raw = (M + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
           "--b\r\nContent-Type: application/pdf\r\n"
           "Content-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.pdf\r\n\r\n%PDF\r\n"
           "--b\r\nContent-Type: application/pdf; name=\"=?koi8-r?B?8NLJ18XULnBkZg==?=\"\r\n"
           "Content-Disposition: attachment\r\n\r\n%PDF\r\n--b--\r\n").encode()
    names = [a.filename for a in parse(raw).attachments]
    assert names == ["résumé.pdf", "Привет.pdf"]


@pytest.mark.parametrize("body,charset,expected", [
    ("Grüße".encode("utf-8"), "iso-8859-1", "Grüße"),            # UTF-8 mislabelled as Latin-1
    ("Grüße".encode("cp1252"), "utf-8", "Grüße"),                 # Latin-1 mislabelled as UTF-8
    ("Grüße".encode("cp1252"), None, "Grüße"),                    # 8-bit, no label
    ("日本語のテキストです".encode("shift_jis"), "x-unknown", "日本語のテキストです"),
])
def test_charsets_are_decoded_and_text_never_dropped(body, charset, expected):
    ctype = f"text/plain; charset={charset}" if charset else "text/plain"
    raw = (M + f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").encode() + body
    assert parse(raw).text.strip() == expected


def test_bare_lf_and_header_only_messages():
    lf = parse(b"From: a@example.com\nSubject: =?utf-8?q?caf=C3=A9?=\n\nline one\nline two\n")
    assert lf.subject == "café" and lf.text == "line one\nline two\n"
    headers_only = parse(b"From: a@example.com\r\nSubject: nothing\r\n")
    assert headers_only.subject == "nothing" and not headers_only.attachments and not headers_only.parse_errors


def test_header_count_and_depth_limits_are_reported():
    many = "".join(f"X-H{i}: v\r\n" for i in range(MAX_HEADERS + 10))
    msg = parse((many + "Subject: s\r\n\r\nbody").encode())
    assert len(msg.headers) == MAX_HEADERS
    assert any("header fields" in e for e in msg.parse_errors)
    depth = MAX_DEPTH + 20
    nested = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth))
    msg = parse((M + nested + "Content-Type: text/plain\r\n\r\ndeep\r\n").encode())
    assert any("nesting deeper" in e for e in msg.parse_errors)


def test_auto_submitted_signals():
    assert classify([("Auto-Submitted", "auto-replied")], None) == AutoSubmitted(
        "auto-replied", ("Auto-Submitted: auto-replied",))
    assert classify([("Auto-Submitted", "no")], "text/plain").type == "no"
    assert classify([("Precedence", "bulk")], None).type == "bulk"
    assert classify([("List-Id", "<dev.lists.example.com>")], None).type == "list"
    assert classify([], "multipart/report").type == "report"
    human = classify([("From", "a@example.com")], "text/plain")
    assert not human.automated
    assert with_null_sender(human, "").type == "report"
    assert with_null_sender(human, "a@example.com") == human
    assert AutoSubmitted.from_json(classify([("Precedence", "list")], None).to_json()).type == "list"


def test_payload_carries_signature_auto_submitted_and_forwarded():
    from datetime import datetime, timezone

    from delivery.payload import message_data
    from store.messages import MessageRecord

    parsed = parse(_load("mikel-mail/attachment_emails/attachment_message_rfc822.eml")).to_json()
    now = datetime.now(timezone.utc)
    record = MessageRecord("msg_1", "txn_1", "acc", "example.com", "b@example.com", "INBOX", 1, "accepted",
                           "stored", now, "", ["b@example.com"], None, None, False, None, None, [], "thr_1", None,
                           None, None, None, 1, "0" * 64, None, None, [], {}, {}, {})
    data = message_data(record, parsed, links=None)
    assert data["auto_submitted"] == {"automated": True, "type": "report", "reasons": ["null reverse-path"]}
    assert "extracted_signature" in data
    assert any("forwarded" in a for a in data["attachments"])


def test_attachment_ids_survive_trace_fields_prepended_to_the_stored_copy():
    """The web role re-parses the stored copy (our trace fields on top) to serve an attachment link."""
    from tests.conftest import SAMPLES

    raw = (SAMPLES / "attachments.eml").read_bytes()
    stored = b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=vendor.test\r\n" + raw
    received = [a.id for a in parse(raw).attachments]
    assert len(received) == 3 and [a.id for a in parse(stored).attachments] == received
