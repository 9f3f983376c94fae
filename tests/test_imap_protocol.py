"""Transcript tests of the IMAP window: client lines in, the exact server bytes out (RFC 3501 and
the extensions in docs/rfc-status.md). One in-process server over real TLS per module."""

from __future__ import annotations

import base64

import pytest

from tests.support.imap_fixtures import FIXED_DATE, Mailbox, imap, mailbox  # noqa: F401

CAPS = (b"IMAP4rev1 SASL-IR LITERAL+ ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE ENABLE "
        b"CONDSTORE LIST-EXTENDED LIST-STATUS ESEARCH")
PREAUTH_CAPS = CAPS.replace(b"IMAP4rev1 ", b"IMAP4rev1 AUTH=PLAIN ")


def test_greeting_and_capability(mailbox: Mailbox):
    t = mailbox.connect(login=False)
    assert t.greeting == b"* OK [CAPABILITY " + PREAUTH_CAPS + b"] mailkite IMAP ready\r\n"
    assert t.cmd(b"a CAPABILITY") == b"* CAPABILITY " + PREAUTH_CAPS + b"\r\na OK CAPABILITY completed\r\n"
    assert t.cmd(b"b LOGIN anything " + mailbox.password.encode()) == \
        b"b OK [CAPABILITY " + CAPS + b"] Logged in\r\n"
    assert t.cmd(b"c CAPABILITY") == b"* CAPABILITY " + CAPS + b"\r\nc OK CAPABILITY completed\r\n"
    assert t.cmd(b"d LOGOUT") == b"* BYE Logging out\r\nd OK LOGOUT completed\r\n"


def test_login_refusals(mailbox: Mailbox):
    t = mailbox.connect(login=False)
    assert t.cmd(b"a LOGIN bob@x mk_imap_" + b"A" * 40) == (
        b"a NO [AUTHENTICATIONFAILED] Invalid credentials: use an mk_imap_ app-password "
        b"(mailkite app-password create)\r\n")
    assert t.cmd(b"b LOGIN bob@x hunter2") .startswith(b"b NO [AUTHENTICATIONFAILED] Invalid credentials")
    # A real password with one character changed is refused the same way.
    wrong = mailbox.password[:-1] + ("a" if mailbox.password[-1] != "a" else "b")
    assert t.cmd(b"c LOGIN bob " + wrong.encode()).startswith(b"c NO [AUTHENTICATIONFAILED] Invalid credentials")
    assert t.cmd(b"d SELECT INBOX") == b"d BAD SELECT needs a login first\r\n"
    assert t.cmd(b'e LOGIN "quoted user" "' + mailbox.password.encode() + b'"').startswith(b"e OK [CAPABILITY")
    assert t.cmd(b"f LOGIN x y") == b"f BAD already logged in\r\n"


def test_login_refused_for_unverified_and_zero_retention_domains(imap):
    from tests.support.imap import Transcript, unique_domain

    unverified, zero = unique_domain("unv"), unique_domain("zr")
    imap.domain(unverified, verified=False)
    imap.domain(zero, zero_retention=True)
    t = Transcript(imap.port, imap.cert)
    try:
        assert t.cmd(b"a LOGIN x " + imap.password(unverified).encode()) == (
            b"a NO [AUTHENTICATIONFAILED] This domain is not verified: its MX record must point at "
            b"mx.mailkite.test (mailkite domain verify)\r\n")
        assert t.cmd(b"b LOGIN x " + imap.password(zero).encode()) == (
            b"b NO [AUTHENTICATIONFAILED] This domain is zero-retention: nothing is stored, so there is no "
            b"mailbox to read over IMAP\r\n")
    finally:
        t.close()


def test_authenticate_plain_with_and_without_initial_response(mailbox: Mailbox):
    token = base64.b64encode(b"\x00bob@x\x00" + mailbox.password.encode())
    t = mailbox.connect(login=False)
    assert t.cmd(b"a AUTHENTICATE PLAIN " + token) == b"a OK [CAPABILITY " + CAPS + b"] Logged in\r\n"
    t2 = mailbox.connect(login=False)
    t2.send_raw(b"a AUTHENTICATE PLAIN\r\n")
    assert t2.read_line() == b"+ \r\n"
    t2.send_raw(token + b"\r\n")
    assert t2.read_until_tag(b"a") == b"a OK [CAPABILITY " + CAPS + b"] Logged in\r\n"
    t3 = mailbox.connect(login=False)
    t3.send_raw(b"c AUTHENTICATE PLAIN\r\n")
    assert t3.read_line() == b"+ \r\n"
    t3.send_raw(b"*\r\n")
    assert t3.read_until_tag(b"c") == b"c BAD AUTHENTICATE cancelled\r\n"
    assert t3.cmd(b"d AUTHENTICATE CRAM-MD5") == b"d NO [CANNOT] only AUTHENTICATE PLAIN is supported\r\n"
    assert t3.cmd(b"e AUTHENTICATE PLAIN !!!") == b"e BAD bad initial response\r\n"


def test_select_examine_and_sent(mailbox: Mailbox):
    t = mailbox.connect()
    assert t.cmd(b"a SELECT INBOX") == (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Seen)] \\Answered, \\Flagged and \\Seen are kept; "
        b"other flags last for this session\r\n"
        b"* 3 EXISTS\r\n* 0 RECENT\r\n"
        b"* OK [UNSEEN 1] First unseen\r\n"
        b"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
        b"* OK [UIDNEXT 4] Predicted next UID\r\n"
        b"* OK [HIGHESTMODSEQ 4] Highest\r\n"
        b"a OK [READ-WRITE] SELECT completed\r\n")
    assert t.cmd(b"b EXAMINE inbox") == (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"
        b"* 3 EXISTS\r\n* 0 RECENT\r\n"
        b"* OK [UNSEEN 1] First unseen\r\n"
        b"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
        b"* OK [UIDNEXT 4] Predicted next UID\r\n"
        b"* OK [HIGHESTMODSEQ 4] Highest\r\n"
        b"b OK [READ-ONLY] EXAMINE completed\r\n")
    assert t.cmd(b"c STORE 1 +FLAGS (\\Seen)") == b"c NO [READ-ONLY] the mailbox is read-only (EXAMINE)\r\n"
    assert t.cmd(b"d FETCH 1 (BODY[TEXT])").startswith(b"* 1 FETCH (BODY[TEXT] {48}\r\n")  # no \Seen set
    assert t.cmd(b"e SELECT Sent") == (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Seen)] \\Answered, \\Flagged and \\Seen are kept; "
        b"other flags last for this session\r\n"
        b"* 0 EXISTS\r\n* 0 RECENT\r\n"
        b"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
        b"* OK [UIDNEXT 1] Predicted next UID\r\n"
        b"* OK [HIGHESTMODSEQ 1] Highest\r\n"
        b"e OK [READ-WRITE] SELECT completed\r\n")
    assert t.cmd(b"f FETCH 1:* (FLAGS)") == b"f OK FETCH completed\r\n"
    assert t.cmd(b"g FETCH 1 (FLAGS)") == b"g BAD the mailbox is empty: no message numbers are valid\r\n"
    assert t.cmd(b"h SELECT Trash") == b"h NO [NONEXISTENT] no mailbox Trash: there are INBOX and Sent\r\n"
    assert t.cmd(b"i FETCH 1 (FLAGS)") == b"i BAD FETCH needs a selected mailbox (SELECT INBOX)\r\n"


def test_list_lsub_namespace_status_id_enable(mailbox: Mailbox):
    t = mailbox.connect()
    assert t.cmd(b'a LIST "" "*"') == (b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                                      b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n'
                                      b"a OK LIST completed\r\n")
    assert t.cmd(b'b LIST "" ""') == b'* LIST (\\Noselect) "/" ""\r\nb OK LIST completed\r\n'
    assert t.cmd(b'c LIST (SPECIAL-USE) "" "*"') == b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\nc OK LIST completed\r\n'
    assert t.cmd(b'd LIST "" "*" RETURN (SPECIAL-USE)') == (b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                                                           b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n'
                                                           b"d OK LIST completed\r\n")
    assert t.cmd(b'e LIST "" ("inbox" "Se%") RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN UIDNEXT))') == (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" INBOX\r\n'
        b"* STATUS INBOX (MESSAGES 3 UNSEEN 3 UIDNEXT 4)\r\n"
        b'* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" Sent\r\n'
        b"* STATUS Sent (MESSAGES 0 UNSEEN 0 UIDNEXT 1)\r\n"
        b"e OK LIST completed\r\n")
    assert t.cmd(b'f LIST "" "Archive/*"') == b"f OK LIST completed\r\n"
    assert t.cmd(b'g LSUB "" "*"') == (b'* LSUB (\\HasNoChildren) "/" INBOX\r\n'
                                      b'* LSUB (\\HasNoChildren \\Sent) "/" Sent\r\ng OK LSUB completed\r\n')
    assert t.cmd(b"h NAMESPACE") == b'* NAMESPACE (("" "/")) NIL NIL\r\nh OK NAMESPACE completed\r\n'
    assert t.cmd(b"i STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)") == (
        b"* STATUS INBOX (MESSAGES 3 RECENT 0 UIDNEXT 4 UIDVALIDITY 1700000000 UNSEEN 3 HIGHESTMODSEQ 4)\r\n"
        b"i OK STATUS completed\r\n")
    assert t.cmd(b"j STATUS Junk (MESSAGES)") == b"j NO [NONEXISTENT] no mailbox Junk: there are INBOX and Sent\r\n"
    assert t.cmd(b"k STATUS INBOX (SIZE)") == b"k BAD unknown STATUS item SIZE\r\n"
    assert t.cmd(b'l ID ("name" "imaplib")') == (b'* ID ("name" "mailkite" "vendor" "mailkite" "support-url" '
                                                b'"https://github.com/mailkite")\r\nl OK ID completed\r\n')
    assert t.cmd(b"m ENABLE CONDSTORE QRESYNC") == b"* ENABLED CONDSTORE\r\nm OK ENABLE completed\r\n"
    assert t.cmd(b'n LIST (BOGUS) "" "*"') == b"n BAD unknown LIST selection option BOGUS\r\n"
    assert t.cmd(b"o SUBSCRIBE Sent") == b"o OK SUBSCRIBE completed (INBOX and Sent are always subscribed)\r\n"


def _size(template: bytes, mailbox: Mailbox) -> bytes:
    from tests.support.imap import sample

    return b"%d" % len(sample(template, mailbox.domain))


def test_fetch_items(mailbox: Mailbox):
    from tests.support.imap import PLAIN

    t = mailbox.connect(select="INBOX")
    size = _size(PLAIN, mailbox)
    assert t.cmd(b"a FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)") == (
        b'* 1 FETCH (UID 1 FLAGS () INTERNALDATE " 5-Feb-2026 12:30:00 +0000" RFC822.SIZE ' + size + b' '
        b'ENVELOPE ("Mon, 2 Feb 2026 10:00:00 +0100" "Lunch on Friday" (("Alice Example" NIL "alice" "example.org")) '
        b'(("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) '
        b'(("Bob" NIL "bob" "' + mailbox.domain.encode() + b'")) NIL NIL NIL "<plain-1@example.org>"))\r\n'
        b"a OK FETCH completed\r\n")
    assert t.cmd(b"b UID FETCH 2 (BODYSTRUCTURE)") == (
        b'* 2 FETCH (UID 2 BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 55 0 '
        b'NIL NIL NIL NIL)("application" "pdf" ("name" "cv.pdf") NIL NIL "base64" 32 NIL ("attachment" '
        b'("filename" "cv.pdf")) NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL))\r\n'
        b"b OK UID FETCH completed\r\n")
    # Header names are echoed in the client's order and spelling; fields come in message order.
    assert t.cmd(b"c FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject FROM x-custom)])") == (
        b"* 1 FETCH (BODY[HEADER.FIELDS (subject FROM x-custom)] {84}\r\n"
        b"From: Alice Example <alice@example.org>\r\nSubject: Lunch on Friday\r\nX-Custom: one\r\n\r\n)\r\n"
        b"c OK FETCH completed\r\n")
    assert t.cmd(b"d FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (To From Date Message-ID Subject)])") == (
        b"* 1 FETCH (BODY[HEADER.FIELDS.NOT (To From Date Message-ID Subject)] {17}\r\n"
        b"X-Custom: one\r\n\r\n)\r\nd OK FETCH completed\r\n")
    mime = (b"Content-Type: application/pdf; name=\"cv.pdf\"\r\n"
            b"Content-Disposition: attachment; filename=\"cv.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    assert t.cmd(b"e FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[2]<4.6> BODY.PEEK[9])") == (
        b"* 2 FETCH (BODY[1] {55}\r\nVoil=C3=A0 my r=C3=A9sum=C3=A9, with the word zeppelin. "
        b"BODY[2.MIME] {%d}\r\n" % len(mime) + mime + b" "
        b"BODY[2]<4> {6}\r\nRi0xLj BODY[9] {0}\r\n)\r\ne OK FETCH completed\r\n")
    assert t.cmd(b"f FETCH 3 (BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.HEADER.FIELDS (subject)])") == (
        b"* 3 FETCH (BODY[2.HEADER] {51}\r\nFrom: erin@example.com\r\nSubject: the old thread\r\n\r\n "
        b"BODY[2.TEXT] {14}\r\nOriginal text. BODY[2.HEADER.FIELDS (subject)] {27}\r\n"
        b"Subject: the old thread\r\n\r\n)\r\nf OK FETCH completed\r\n")
    header = (b"From: Alice Example <alice@example.org>\r\nTo: Bob <bob@" + mailbox.domain.encode() + b">\r\n"
              b"Subject: Lunch on Friday\r\nDate: Mon, 2 Feb 2026 10:00:00 +0100\r\n"
              b"Message-ID: <plain-1@example.org>\r\nX-Custom: one\r\n\r\n")
    assert t.cmd(b"g FETCH 1 (BODY.PEEK[]<0.6> RFC822.HEADER MODSEQ)") == (
        b"* 1 FETCH (BODY[]<0> {6}\r\nFrom:  RFC822.HEADER {%d}\r\n" % len(header) + header +
        b" MODSEQ (2))\r\ng OK FETCH completed\r\n")
    # A non-PEEK body fetch sets \Seen, persists it and reports FLAGS (RFC 3501 §6.4.5).
    assert t.cmd(b"h FETCH 1 (BODY[TEXT])") == (
        b"* 1 FETCH (BODY[TEXT] {48}\r\nHi Bob,\r\nshall we have lunch on Friday?\r\nAlice\r\n FLAGS (\\Seen) "
        b"MODSEQ (5))\r\nh OK FETCH completed\r\n")
    assert t.cmd(b"i FETCH 1 (FLAGS)") == b"* 1 FETCH (FLAGS (\\Seen) MODSEQ (5))\r\ni OK FETCH completed\r\n"
    assert t.cmd(b"j UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4)") == (
        b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (5))\r\nj OK UID FETCH completed\r\n")
    assert t.cmd(b"k UID FETCH 7:* (UID)") == b"* 3 FETCH (UID 3)\r\nk OK UID FETCH completed\r\n"
    assert t.cmd(b"l FETCH 4 (FLAGS)") == b"l BAD message sequence number out of range\r\n"
    assert t.cmd(b"m FETCH 1 (BINARY[1])") == b"m BAD BINARY is not supported (not advertised)\r\n"
    assert t.cmd(b"n FETCH 1 BODY[HEADER.FIELDS]") == b"n BAD expected a space near ']'\r\n"


def test_fetch_macros_and_rfc822(mailbox: Mailbox):
    from tests.support.imap import PLAIN

    t = mailbox.connect(select="INBOX")
    size = _size(PLAIN, mailbox)
    fast = t.cmd(b"a FETCH 1 FAST")
    assert fast == (b'* 1 FETCH (FLAGS () INTERNALDATE " 5-Feb-2026 12:30:00 +0000" RFC822.SIZE ' + size + b')\r\n'
                    b"a OK FETCH completed\r\n")
    full = t.cmd(b"b FETCH 1 FULL")
    assert full.startswith(b"* 1 FETCH (FLAGS () INTERNALDATE") and b" BODY (\"text\" \"plain\"" in full
    rfc822 = t.cmd(b"c FETCH 1 RFC822")
    assert rfc822.startswith(b"* 1 FETCH (RFC822 {" + size + b"}\r\nFrom: Alice Example") and b"FLAGS (\\Seen)" in rfc822


def test_search(mailbox: Mailbox):
    t = mailbox.connect(select="INBOX")
    t.cmd(b"x STORE 2 +FLAGS (\\Flagged)")
    cases = {
        b"ALL": b"1 2 3", b"UNSEEN": b"1 2 3", b"FLAGGED": b"2", b"UNFLAGGED": b"1 3", b"NEW": b"",
        b"OLD": b"1 2 3", b"RECENT": b"", b"FROM alice": b"1", b"FROM REN\xc3\x89": b"2", b"TO carol": b"2",
        b"CC bob": b"2", b"SUBJECT lunch": b"1", b"HEADER X-Custom one": b"1", b"HEADER X-Custom \"\"": b"1",
        b"BODY zeppelin": b"2", b"TEXT erin": b"3", b"TEXT \"Original text\"": b"3", b"BODY Alice": b"1",
        b"LARGER 500": b"2", b"LARGER 300": b"2 3", b"SMALLER 300": b"1", b"SINCE 5-Feb-2026": b"1 2 3", b"BEFORE 5-Feb-2026": b"",
        b"ON 5-Feb-2026": b"1 2 3", b"SENTON 3-Feb-2026": b"2", b"SENTBEFORE 3-Feb-2026": b"1",
        b"SENTSINCE 4-Feb-2026": b"3", b"OR FROM alice FROM dave": b"1 3", b"NOT FROM alice": b"2 3",
        b"2:3 NOT FLAGGED": b"3", b"UID 1,3": b"1 3", b"UID 2:*": b"2 3", b"(FROM alice) (SEEN)": b"",
        b"DELETED": b"", b"UNDELETED": b"1 2 3", b"DRAFT": b"", b"KEYWORD $Junk": b"", b"UNKEYWORD $Junk": b"1 2 3",
        b"CHARSET UTF-8 SUBJECT r\xc3\xa9sum\xc3\xa9": b"2", b"CHARSET US-ASCII ALL": b"1 2 3",
    }
    for i, (criteria, expected) in enumerate(cases.items()):
        tag = b"s%d" % i
        got = t.cmd(tag + b" SEARCH " + criteria)
        assert got == b"* SEARCH" + (b" " + expected if expected else b"") + b"\r\n" + tag + \
            b" OK SEARCH completed\r\n", criteria
    assert t.cmd(b"u UID SEARCH FLAGGED") == b"* SEARCH 2\r\nu OK UID SEARCH completed\r\n"
    assert t.cmd(b"v SEARCH MODSEQ 5") == b"* SEARCH 2 (MODSEQ 5)\r\nv OK SEARCH completed\r\n"
    assert t.cmd(b"w SEARCH RETURN (MIN MAX COUNT ALL) UNFLAGGED") == (
        b'* ESEARCH (TAG "w") MIN 1 MAX 3 COUNT 2 ALL 1,3\r\nw OK SEARCH completed\r\n')
    assert t.cmd(b"x2 UID SEARCH RETURN () ALL") == b'* ESEARCH (TAG "x2") UID ALL 1:3\r\nx2 OK UID SEARCH completed\r\n'
    assert t.cmd(b"y SEARCH CHARSET KOI8-R ALL") == b"y NO [BADCHARSET (UTF-8 US-ASCII)] charset KOI8-R is not supported\r\n"
    assert t.cmd(b"z SEARCH BOGUS") == b"z BAD unknown search key BOGUS\r\n"
    assert t.cmd(b"z2 SEARCH SINCE 31-Feb-2026") == b"z2 BAD no such date '31-Feb-2026'\r\n"
    # A synchronising literal for a search string.
    t.send_raw(b"l1 SEARCH CHARSET UTF-8 SUBJECT {6}\r\n")
    assert t.read_line() == b"+ Ready for literal data\r\n"
    t.send_raw("résum".encode() + b"\r\n")
    assert t.read_until_tag(b"l1") == b"* SEARCH 2\r\nl1 OK SEARCH completed\r\n"
    # LITERAL+ (RFC 7888): no continuation.
    assert t.cmd(b"l2 SEARCH FROM {5+}\r\nalice") == b"* SEARCH 1\r\nl2 OK SEARCH completed\r\n"


def test_store_flags_persist_and_deletes_do_not_stick(mailbox: Mailbox):
    t = mailbox.connect(select="INBOX")
    assert t.cmd(b"a STORE 1 +FLAGS (\\Seen \\Flagged)") == \
        b"* 1 FETCH (FLAGS (\\Flagged \\Seen))\r\na OK STORE completed\r\n"
    assert t.cmd(b"b UID STORE 1:2 -FLAGS (\\Flagged)") == \
        b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (UID 2 FLAGS ())\r\nb OK UID STORE completed\r\n"
    assert t.cmd(b"c STORE 2 FLAGS.SILENT (\\Answered $Label1)") == b"c OK STORE completed\r\n"
    assert t.cmd(b"d FETCH 2 (FLAGS)") == b"* 2 FETCH (FLAGS (\\Answered $Label1))\r\nd OK FETCH completed\r\n"
    assert t.cmd(b"e STORE 3 +FLAGS \\Deleted") == b"* 3 FETCH (FLAGS (\\Deleted))\r\ne OK STORE completed\r\n"
    assert t.cmd(b"f EXPUNGE") == (b"* 3 FETCH (UID 3 FLAGS ())\r\n"
                                  b"f OK EXPUNGE completed: messages are kept (deleting does not stick here)\r\n")
    assert t.cmd(b"g UID EXPUNGE 3") == b"g OK EXPUNGE completed: messages are kept (deleting does not stick here)\r\n"
    assert t.cmd(b"h STORE 1 +FLAGS (\\Recent)") == b"h BAD \\Recent cannot be changed (RFC 3501 section 2.3.2)\r\n"
    assert t.cmd(b"i STORE 1 +FLAGS (\\Bogus)") == b"i BAD unknown system flag \\Bogus\r\n"
    t.cmd(b"j LOGOUT")
    # Persisted flags are seen by a new session; session flags are gone.
    t2 = mailbox.connect(select="INBOX")
    assert t2.cmd(b"k FETCH 1:3 (FLAGS)") == (b"* 1 FETCH (FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS (\\Answered))\r\n"
                                             b"* 3 FETCH (FLAGS ())\r\nk OK FETCH completed\r\n")
    assert t2.cmd(b"l STATUS INBOX (MESSAGES)") == b"* STATUS INBOX (MESSAGES 3)\r\nl OK STATUS completed\r\n"


def test_condstore_unchangedsince(mailbox: Mailbox):
    t = mailbox.connect(select="INBOX")
    assert t.cmd(b"a UID STORE 1 (UNCHANGEDSINCE 2) +FLAGS.SILENT (\\Flagged)") == \
        b"* 1 FETCH (UID 1 MODSEQ (5))\r\na OK UID STORE completed\r\n".replace(
            b"(UID 1 MODSEQ (5))", b"(UID 1 FLAGS (\\Flagged) MODSEQ (5))")
    assert t.cmd(b"b UID STORE 1,2 (UNCHANGEDSINCE 4) +FLAGS (\\Answered)") == (
        b"* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (6))\r\n"
        b"b OK [MODIFIED 1] Some messages were changed by someone else (CONDSTORE)\r\n")


def test_folder_changes_copy_move_append_refused(mailbox: Mailbox):
    t = mailbox.connect(select="INBOX")
    cannot_folders = b"NO [CANNOT] Folders cannot be created, deleted or renamed: this account has INBOX and Sent only\r\n"
    cannot_copy = b"NO [CANNOT] Messages cannot be copied, moved or uploaded: IMAP here is a read window (flags only)\r\n"
    assert t.cmd(b"a CREATE Trash") == b"a " + cannot_folders
    assert t.cmd(b"b DELETE Sent") == b"b " + cannot_folders
    assert t.cmd(b"c RENAME Sent Old") == b"c " + cannot_folders
    assert t.cmd(b"d UID MOVE 1 Trash") == b"d " + cannot_copy
    assert t.cmd(b"e COPY 1:2 Archive") == b"e " + cannot_copy
    # APPEND is refused before the client sends its message (no continuation for the literal).
    assert t.cmd(b"f APPEND Sent (\\Seen) {310}") == (
        b"f NO [CANNOT] APPEND is not available: this mailbox is read-only except for flags\r\n")
    assert t.cmd(b"g APPEND Sent {5+}\r\nhello") == (
        b"g NO [CANNOT] APPEND is not available: this mailbox is read-only except for flags\r\n")
    assert t.cmd(b"h NOOP") == b"h OK NOOP completed\r\n"
    assert t.cmd(b"i CLOSE") == b"i OK CLOSE completed\r\n"
    assert t.cmd(b"j STATUS INBOX (MESSAGES)") == b"* STATUS INBOX (MESSAGES 3)\r\nj OK STATUS completed\r\n"


def test_syntax_errors_get_bad(mailbox: Mailbox):
    t = mailbox.connect()
    assert t.cmd(b"a FROB") == b"a BAD unknown command FROB\r\n"
    assert t.cmd(b"b") == b"b BAD missing command name\r\n"
    t.send_raw(b"+++\r\n")
    assert t.read_line() == b"* BAD expected a tag, then a command\r\n"
    assert t.cmd(b"c SELECT") == b"c BAD expected a space at the end of the command\r\n"
    assert t.cmd(b'd LOGIN "unterminated') == b"d BAD unterminated quoted string\r\n"
    assert t.cmd(b"e UID FROB 1") == b"e BAD UID must be followed by FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE\r\n"
    assert t.cmd(b"f STARTTLS") == b"f BAD TLS is already active (port 993 is implicit TLS)\r\n"
    assert t.cmd(b"g SELECT INBOX") .endswith(b"g OK [READ-WRITE] SELECT completed\r\n")
    assert t.cmd(b"h FETCH 0 FLAGS") == b"h BAD message numbers start at 1\r\n"
    assert t.cmd(b"i FETCH 1 (FLAGS") == b"i BAD expected a space at the end of the command\r\n"
    assert t.cmd(b"j STORE 1 FLAGZ (\\Seen)") == b"j BAD expected FLAGS, +FLAGS or -FLAGS\r\n"
    assert t.cmd(b"k NOOP") == b"k OK NOOP completed\r\n"


def test_noop_reports_other_sessions_changes(mailbox: Mailbox):
    a = mailbox.connect(select="INBOX")
    b = mailbox.connect(select="INBOX")
    assert a.cmd(b"a1 STORE 2 +FLAGS.SILENT (\\Flagged)") == b"a1 OK STORE completed\r\n"
    assert b.cmd(b"b1 NOOP") == b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\nb1 OK NOOP completed\r\n"
    assert b.cmd(b"b2 NOOP") == b"b2 OK NOOP completed\r\n"
    assert a.cmd(b"a2 NOOP") == b"a2 OK NOOP completed\r\n"  # its own change is not repeated
    from tests.support.imap import PLAIN, sample

    mailbox.imap.deliver(sample(PLAIN, mailbox.domain), [f"bob@{mailbox.domain}"])
    # The notification travels through Redis; a NOOP shortly after reports the new message.
    import time

    deadline = time.monotonic() + 5
    while True:
        got = b.cmd(b"b3 NOOP")
        if got != b"b3 OK NOOP completed\r\n" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got == b"* 4 EXISTS\r\n* 0 RECENT\r\nb3 OK NOOP completed\r\n"
