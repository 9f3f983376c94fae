"""Real IMAP client libraries against the window over TLS: Python imaplib, imapclient, aioimaplib;
two clients at once (flags set by one are seen by the other, IDLE wakes on new mail)."""

from __future__ import annotations

import asyncio
import email
import imaplib
import threading
import time

import aioimaplib
import imapclient

from tests.support.imap import FORWARD, MULTIPART, PLAIN, client_context, sample
from tests.support.imap_fixtures import Mailbox, imap, mailbox  # noqa: F401


def test_imaplib_read_loop(mailbox: Mailbox):
    """The loop from the product page (reference/003): search UNSEEN, fetch RFC822, print From/Subject."""
    m = imaplib.IMAP4_SSL("127.0.0.1", mailbox.imap.port, ssl_context=client_context(mailbox.imap.cert))
    assert m.login("agent@" + mailbox.domain, mailbox.password)[0] == "OK"
    assert m.select("INBOX") == ("OK", [b"3"])
    typ, data = m.search(None, "UNSEEN")
    assert (typ, data) == ("OK", [b"1 2 3"])
    seen = []
    for num in data[0].split():
        typ, raw = m.fetch(num, "(RFC822)")
        msg = email.message_from_bytes(raw[0][1])
        seen.append((msg["From"], msg["Subject"]))
    assert seen[0] == ("Alice Example <alice@example.org>", "Lunch on Friday")
    assert raw[0][1] == sample(FORWARD, mailbox.domain)  # byte-identical
    assert m.search(None, "UNSEEN") == ("OK", [b""])
    assert m.store("1", "-FLAGS", "\\Seen")[0] == "OK"
    assert m.search(None, "UNSEEN") == ("OK", [b"1"])
    assert m.list()[1] == [b'(\\HasNoChildren) "/" INBOX', b'(\\HasNoChildren \\Sent) "/" Sent']
    typ, resp = m.copy("1", "Trash")
    assert typ == "NO"
    m.logout()


def test_imapclient_fetch_envelope_structure_and_flags(mailbox: Mailbox):
    c = imapclient.IMAPClient("127.0.0.1", port=mailbox.imap.port, ssl=True,
                              ssl_context=client_context(mailbox.imap.cert))
    c.login("whoever", mailbox.password)
    folders = c.list_folders()
    assert [(f[2], f[0]) for f in folders] == [("INBOX", (b"\\HasNoChildren",)),
                                              ("Sent", (b"\\HasNoChildren", b"\\Sent"))]
    assert c.find_special_folder(imapclient.imapclient.SENT) == "Sent"
    info = c.select_folder("INBOX")
    assert info[b"EXISTS"] == 3 and info[b"UIDVALIDITY"] == 1700000000 and info[b"UIDNEXT"] == 4
    data = c.fetch([1, 2, 3], ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "FLAGS", "INTERNALDATE"])
    env = data[1][b"ENVELOPE"]
    assert env.subject == b"Lunch on Friday" and env.from_[0].mailbox == b"alice"
    assert data[1][b"RFC822.SIZE"] == len(sample(PLAIN, mailbox.domain))
    assert data[2][b"BODYSTRUCTURE"].is_multipart
    assert data[3][b"BODYSTRUCTURE"][0][1][:2] == (b"message", b"rfc822")
    c.add_flags([2], [imapclient.FLAGGED])
    assert c.search(["FLAGGED"]) == [2]
    assert c.get_flags([2]) == {2: (b"\\Flagged",)}
    c.delete_messages([3])  # \Deleted lasts for the session; EXPUNGE removes nothing
    c.expunge()
    assert c.search("ALL") == [1, 2, 3]
    assert c.folder_status("INBOX", ["MESSAGES", "UNSEEN"]) == {b"MESSAGES": 3, b"UNSEEN": 3}
    c.logout()


def test_aioimaplib_login_fetch_and_idle(mailbox: Mailbox):
    async def run() -> tuple[list, list]:
        client = aioimaplib.IMAP4_SSL("127.0.0.1", mailbox.imap.port, ssl_context=client_context(mailbox.imap.cert))
        await client.wait_hello_from_server()
        assert (await client.login("u", mailbox.password)).result == "OK"
        assert (await client.select("INBOX")).result == "OK"
        fetched = await client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        idle = await client.idle_start(timeout=10)
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, lambda: threading.Thread(
            target=mailbox.imap.deliver, args=(sample(MULTIPART, mailbox.domain), [f"carol@{mailbox.domain}"]),
            daemon=True).start())
        pushed = await client.wait_server_push(timeout=10)
        client.idle_done()
        await asyncio.wait_for(idle, 10)
        await client.logout()
        return fetched.lines, pushed

    fetched, pushed = asyncio.run(run())
    assert b"Subject: Lunch on Friday" in b"".join(x for x in fetched if isinstance(x, (bytes, bytearray)))
    assert b"4 EXISTS" in pushed


def test_two_clients_flags_and_idle(mailbox: Mailbox):
    ctx = client_context(mailbox.imap.cert)
    watcher = imapclient.IMAPClient("127.0.0.1", port=mailbox.imap.port, ssl=True, ssl_context=ctx)
    actor = imapclient.IMAPClient("127.0.0.1", port=mailbox.imap.port, ssl=True, ssl_context=ctx)
    for c in (watcher, actor):
        c.login("u", mailbox.password)
        c.select_folder("INBOX")
    watcher.idle()
    actor.add_flags([1], [imapclient.SEEN, imapclient.FLAGGED])
    got = watcher.idle_check(timeout=5)
    assert (1, b"FETCH", (b"UID", 1, b"FLAGS", (b"\\Flagged", b"\\Seen"))) in got
    start = time.monotonic()
    mailbox.imap.deliver(sample(PLAIN, mailbox.domain), [f"bob@{mailbox.domain}"])
    got = watcher.idle_check(timeout=5)
    assert (4, b"EXISTS") in got and time.monotonic() - start < 5
    watcher.idle_done()
    assert watcher.search(["FLAGGED"]) == [1]
    assert actor.search(["UNSEEN"]) == [2, 3, 4]
    for c in (watcher, actor):
        c.logout()
