"""Command-line mail clients installed from Debian (scripts/apt-packages.txt) against the window:
mbsync syncs INBOX and Sent to a Maildir with every message byte-identical (mbsync stores LF line
ends), fetchmail downloads INBOX, mutt lists and reads a message in a real terminal (tmux)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.support.imap import FORWARD, MULTIPART, PLAIN, sample
from tests.support.imap_fixtures import Mailbox, imap, mailbox  # noqa: F401
from tests.support.mail_clients import MuttSession, fetchmail, maildir_messages, mbsync


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run scripts/setup-test-env (scripts/apt-packages.txt)")


def test_mbsync_syncs_both_folders_byte_identical(mailbox: Mailbox, tmp_path):
    _need("mbsync")
    proc = mbsync(tmp_path, mailbox.imap.port, mailbox.password, mailbox.imap.cert)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    # mbsync writes LF line ends and its own X-TUID tracking field; everything else is our bytes.
    inbox = [re.sub(rb"(?m)^X-TUID: \S+\n", b"", m) for m in maildir_messages(tmp_path / "mail" / "INBOX")]
    expected = [sample(t, mailbox.domain).replace(b"\r\n", b"\n") for t in (PLAIN, MULTIPART, FORWARD)]
    assert inbox == expected
    assert (tmp_path / "mail" / "Sent" / "cur").is_dir() and maildir_messages(tmp_path / "mail" / "Sent") == []
    # A second run is a no-op sync (UIDs and UIDVALIDITY stable).
    again = mbsync(tmp_path, mailbox.imap.port, mailbox.password, mailbox.imap.cert)
    assert again.returncode == 0, again.stderr
    assert [re.sub(rb"(?m)^X-TUID: \S+\n", b"", m)
            for m in maildir_messages(tmp_path / "mail" / "INBOX")] == expected


def test_fetchmail_downloads_inbox(mailbox: Mailbox, tmp_path):
    _need("fetchmail")
    proc, messages = fetchmail(tmp_path, mailbox.imap.port, mailbox.password, mailbox.imap.cert)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert len(messages) == 3
    got = sorted(m.replace(b"\r\n", b"\n") for m in messages)
    for template in (PLAIN, MULTIPART, FORWARD):
        # fetchmail prepends its Received: field; the message it downloaded follows unchanged.
        want = sample(template, mailbox.domain).replace(b"\r\n", b"\n")
        assert sum(1 for m in got if m.endswith(b"\n" + want)) == 1, template[:40]
    # fetchmail "keep": nothing was removed from the server.
    t = mailbox.connect()
    assert t.cmd(b"s STATUS INBOX (MESSAGES)") == b"* STATUS INBOX (MESSAGES 3)\r\ns OK STATUS completed\r\n"


def test_mutt_lists_and_reads_a_message(mailbox: Mailbox, tmp_path):
    _need("mutt")
    _need("tmux")
    mutt = MuttSession(tmp_path, mailbox.imap.port, mailbox.password, mailbox.imap.cert)
    try:
        screen = mutt.wait_for("Lunch on Friday")
        assert "old thread" in screen and "attached" in screen
        mutt.keys("1", "Enter")  # jump to message 1 … then open it
        mutt.keys("Enter")
        screen = mutt.wait_for("shall we have lunch")
        assert "Alice Example" in screen
        mutt.keys("q")
        mutt.keys("|")
        mutt.wait_for("Pipe to command")
        mutt.keys(f"cat > {mutt.out}", "Enter")
        for _ in range(50):
            if mutt.out.exists() and mutt.out.stat().st_size:
                break
            import time

            time.sleep(0.1)
        assert mutt.out.read_bytes().replace(b"\r\n", b"\n") == \
            sample(PLAIN, mailbox.domain).replace(b"\r\n", b"\n")
        mutt.keys("q")
    finally:
        mutt.close()


def test_mbsync_pipelines_a_larger_mailbox(imap, tmp_path):  # noqa: F811
    """mbsync pipelines one FETCH per message (PipelineDepth is unlimited by default)."""
    _need("mbsync")
    from tests.support.imap import unique_domain

    domain = unique_domain("big")
    imap.domain(domain)
    sent = []
    for i in range(150):
        raw = (f"From: a@example.org\r\nTo: bob@{domain}\r\nSubject: message {i}\r\n"
               f"Message-ID: <{i}@example.org>\r\n\r\nbody {i}\r\n").encode()
        imap.deliver(raw, [f"bob@{domain}"])
        sent.append(raw.replace(b"\r\n", b"\n"))
    proc = mbsync(tmp_path, imap.port, imap.password(domain), imap.cert)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    got = [re.sub(rb"(?m)^X-TUID: \S+\n", b"", m) for m in maildir_messages(tmp_path / "mail" / "INBOX")]
    assert got == sent
