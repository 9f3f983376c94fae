"""One account's password never sees another scope's mail (DESIGN.md "Invariants"): a matrix of
app-password scopes × messages over SELECT/STATUS/SEARCH/FETCH/STORE, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.support.imap import ImapHarness, Transcript

MESSAGES = {  # subject -> recipients
    "to-a1": ["a1@alpha.test"],
    "to-a2": ["a2@alpha.test"],
    "to-b1": ["b1@beta.test"],
    "to-a1-and-a2": ["a1@alpha.test", "A2@alpha.test"],  # one transaction, two inboxes (mixed case)
    "to-A1-upper": ["A1@ALPHA.test"],
}
EXPECTED = {  # scope -> subjects it may see
    "alpha.test": {"to-a1", "to-a2", "to-a1-and-a2", "to-A1-upper"},
    "a1@alpha.test": {"to-a1", "to-a1-and-a2", "to-A1-upper"},
    "A2@Alpha.Test": {"to-a2", "to-a1-and-a2"},
    "beta.test": {"to-b1"},
    "b1@beta.test": {"to-b1"},
    "nobody@beta.test": set(),
}


@pytest.fixture
def matrix(db, blobs, tmp_path, redis_url):
    with ImapHarness(db, blobs, redis_url, tmp_path) as h:
        h.domain("alpha.test")
        h.domain("beta.test")
        for subject, rcpts in MESSAGES.items():
            raw = (f"From: x@example.org\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
                   f"Message-ID: <{subject}@example.org>\r\n\r\nbody of {subject}\r\n").encode()
            h.deliver(raw, rcpts)
        yield h, {scope: h.password(scope) for scope in EXPECTED}


def _subjects(t: Transcript) -> list[str]:
    out = t.cmd(b"f FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Subject)])")
    return re.findall(r"Subject: (\S+)", out.decode())


def test_each_scope_sees_exactly_its_mail(matrix):
    h, passwords = matrix
    uids_by_scope = {}
    for scope, expected in EXPECTED.items():
        t = Transcript(h.port, h.cert)
        try:
            assert t.login(passwords[scope]).startswith(b"L1 OK")
            status = t.cmd(b"s STATUS INBOX (MESSAGES)")
            copies = sum(1 for subject in expected for r in MESSAGES[subject]
                         if scope.lower() in (r.lower(), r.lower().split("@")[1]))
            assert status == b"* STATUS INBOX (MESSAGES %d)\r\ns OK STATUS completed\r\n" % copies, scope
            t.cmd(b"a SELECT INBOX")
            seen = set(_subjects(t)) if copies else set()
            assert seen == expected, scope
            assert t.cmd(b"b SEARCH SUBJECT to-b1").startswith(
                b"* SEARCH 1\r\n" if "to-b1" in expected else b"* SEARCH\r\n"), scope
            uids = re.findall(rb"UID (\d+)", t.cmd(b"c UID FETCH 1:* (UID)"))
            uids_by_scope[scope] = {int(u) for u in uids}
        finally:
            t.close()
    # Address scopes see an ascending subset of their domain's UIDs.
    assert uids_by_scope["a1@alpha.test"] <= uids_by_scope["alpha.test"]
    assert uids_by_scope["A2@Alpha.Test"] <= uids_by_scope["alpha.test"]
    assert not uids_by_scope["a1@alpha.test"] & uids_by_scope["A2@Alpha.Test"]


def test_uids_and_flags_outside_the_scope_are_untouchable(matrix):
    h, passwords = matrix
    domain = Transcript(h.port, h.cert)
    a1 = Transcript(h.port, h.cert)
    try:
        domain.login(passwords["alpha.test"])
        domain.cmd(b"a SELECT INBOX")
        all_uids = [int(u) for u in re.findall(rb"UID (\d+)", domain.cmd(b"b UID FETCH 1:* (UID)"))]
        a1.login(passwords["a1@alpha.test"])
        a1.cmd(b"c SELECT INBOX")
        own = {int(u) for u in re.findall(rb"UID (\d+)", a1.cmd(b"d UID FETCH 1:* (UID)"))}
        foreign = [u for u in all_uids if u not in own]
        assert foreign
        for u in foreign:
            assert a1.cmd(b"e UID FETCH %d (BODY.PEEK[])" % u) == b"e OK UID FETCH completed\r\n"
            assert a1.cmd(b"f UID STORE %d +FLAGS (\\Flagged)" % u) == b"f OK UID STORE completed\r\n"
            assert a1.cmd(b"g UID SEARCH UID %d" % u) == b"* SEARCH\r\ng OK UID SEARCH completed\r\n"
        flagged = domain.cmd(b"h UID SEARCH FLAGGED")
        assert flagged == b"* SEARCH\r\nh OK UID SEARCH completed\r\n"
        # beta's password sees nothing of alpha, whatever UID it asks for.
        beta = Transcript(h.port, h.cert)
        beta.login(passwords["beta.test"])
        beta.cmd(b"i SELECT INBOX")
        got = beta.cmd(b"j UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Subject)])")
        assert b"to-a" not in got and b"to-b1" in got
        beta.close()
    finally:
        domain.close()
        a1.close()
