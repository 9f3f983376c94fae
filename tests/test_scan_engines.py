"""The scanner adapters and the scan stage against the real daemons (clamd, rspamd, spamd from
Debian's packages, started by tests/support/*.py on loopback ports)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import datetime, timezone
from email.message import EmailMessage

import pytest

from inbound.auth.results import DkimResult, DmarcResult, SpfResult
from inbound.scan.engines import spam_engine_from_url, virus_engine_from_url
from inbound.scan.errors import MessageTooLarge, ScannerUnavailable
from inbound.scan.scanner import MessageScanner
from inbound.types import AuthResults, SmtpEnvelope
from store.domains import DomainInfo, DomainPolicy
from tests.support.clamd import ATTACHMENT_SIGNATURE, EICAR_SIGNATURE, eicar, flagged_attachment
from tests.support.rspamd import gtube
from tests.support.servers import free_port

ENVELOPE = SmtpEnvelope(mail_from="alice@example.org", rcpt_to=("bob@example.com",), client_ip="127.0.0.1",
                        helo="mail.example.org", tls=False, received_at=datetime.now(timezone.utc),
                        session_id="testsession")


def message(body: str = "Hi Bob, lunch tomorrow?", *, subject: str = "Lunch", sender: str = "alice@example.org",
            attachments: list[tuple[bytes, str, str]] = ()) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Alice <{sender}>"
    msg["To"] = "Bob <bob@example.com>"
    msg["Subject"] = subject
    msg["Date"] = "Sun, 22 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = "<lunch-1@example.org>"
    msg.set_content(body)
    for data, ctype, filename in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def raw(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def zipped(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def nested_eicar() -> bytes:
    """EICAR, base64, as a part of a multipart inside a multipart/alternative inside multipart/mixed."""
    inner = EmailMessage()
    inner.set_content("the report is attached")
    inner.add_attachment(eicar(), maintype="application", subtype="octet-stream", filename="report.bin")
    outer = message("see below")
    outer.add_alternative("<p>see below</p>", subtype="html")
    outer.make_mixed()
    outer.attach(inner)
    data = raw(outer)
    assert eicar() not in data  # only the base64 form travels
    return data


INFECTED_MESSAGES = {
    "plain attachment": lambda: raw(message(attachments=[(eicar(), "application/octet-stream", "eicar.com")])),
    "zipped attachment": lambda: raw(message(attachments=[(zipped("eicar.com", eicar()), "application/zip",
                                                           "eicar.zip")])),
    "nested multipart": nested_eicar,
}


def run(coro):
    return asyncio.run(coro)


async def _virus(url: str, data: bytes, **kw):
    engine = virus_engine_from_url(url)
    try:
        return await engine.scan(data)
    finally:
        await engine.aclose()


async def _spam(url: str, data: bytes, auth: AuthResults = AuthResults(), envelope: SmtpEnvelope = ENVELOPE):
    engine = spam_engine_from_url(url)
    try:
        return await engine.check(envelope, data, auth)
    finally:
        await engine.aclose()


# clamd ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(INFECTED_MESSAGES))
def test_clamd_finds_eicar(clamd_server, case):
    check = run(_virus(clamd_server.url, INFECTED_MESSAGES[case]()))
    assert check.verdict == "infected"
    assert check.signatures[0].startswith(EICAR_SIGNATURE)


def test_clamd_hash_signature_on_an_attachment_over_the_unix_socket(clamd_server):
    data = raw(message(attachments=[(flagged_attachment(), "application/pdf", "invoice.pdf")]))
    check = run(_virus(clamd_server.socket_url, data))
    assert check.verdict == "infected" and check.signatures[0].startswith(ATTACHMENT_SIGNATURE)


def test_clamd_clean_mail_in_many_chunks(clamd_server):
    # 2 MiB of attachment (2.7 MB as base64): ~43 INSTREAM chunks, under StreamMaxLength (4M here).
    big = bytes(range(256)) * (2 * 4096)
    check = run(_virus(clamd_server.url, raw(message(attachments=[(big, "application/octet-stream", "blob.bin")]))))
    assert check.verdict == "clean" and check.signatures == () and check.engine == "clamav"


def test_clamd_stream_max_is_respected(clamd_server):
    big = raw(message(attachments=[(b"\0" * (5 * 1024 * 1024), "application/octet-stream", "zeros.bin")]))
    # The client knows the limit: nothing is sent.
    with pytest.raises(MessageTooLarge):
        run(_virus(clamd_server.url, big))
    # A client configured above clamd's real limit: clamd cuts the stream, we read why.
    with pytest.raises(MessageTooLarge):
        run(_virus(clamd_server.url.replace("stream_max=4M", "stream_max=64M"), big))


def test_clamd_down_is_unavailable():
    with pytest.raises(ScannerUnavailable):
        run(_virus(f"clamd://127.0.0.1:{free_port()}", b"Subject: x\r\n\r\nx\r\n"))


# rspamd -----------------------------------------------------------------------------------------

def test_rspamd_gtube_is_spam(rspamd_server):
    check = run(_spam(rspamd_server.url, raw(message(gtube()))))
    assert check.verdict == "spam" and check.engine == "rspamd"
    assert check.score >= check.required
    assert "GTUBE" in [s.name for s in check.symbols]


def test_rspamd_clean_mail_is_ham(rspamd_server):
    check = run(_spam(rspamd_server.url, raw(message())))
    assert check.verdict == "ham" and check.score < 6  # below rspamd's add_header threshold
    assert check.required == 15.0


def test_rspamd_takes_our_auth_verdicts_instead_of_its_dns(rspamd_server):
    auth = AuthResults(spf=SpfResult("fail", "example.org"), dkim=(DkimResult("pass", "example.org", "s1"),),
                       dmarc=DmarcResult("fail", "example.org", "reject"))
    check = run(_spam(rspamd_server.url, raw(message()), auth))
    symbols = {s.name: s for s in check.symbols}
    # rspamd's http_headers module inserts these from our request headers ("http header" option)
    # and skips its own SPF/DKIM/DMARC lookups.
    for name in ("R_SPF_FAIL", "R_DKIM_ALLOW", "DMARC_POLICY_REJECT"):
        assert name in symbols and "http header" in symbols[name].options
    assert not {"R_SPF_DNSFAIL", "R_SPF_NA", "DMARC_NA", "DMARC_DNSFAIL"} & set(symbols)


def test_rspamd_down_is_unavailable():
    with pytest.raises(ScannerUnavailable):
        run(_spam(f"rspamd://127.0.0.1:{free_port()}", raw(message())))


# spamd (the SpamAssassin alternative) -------------------------------------------------------------

def test_spamd_verdicts(spamd_server):
    spam = run(_spam(spamd_server.url, raw(message(gtube()))))
    assert (spam.verdict, spam.engine, spam.required) == ("spam", "spamassassin", 5.0)
    assert spam.score >= 1000 and "MK_GTUBE" in [s.name for s in spam.symbols]
    ham = run(_spam(spamd_server.url, raw(message())))
    assert ham.verdict == "ham" and ham.score < 5.0
    winner = run(_spam(spamd_server.url, raw(message(subject="You are a winner"))))
    assert winner.verdict == "ham" and "MK_TEST_SUBJECT_WIN" in [s.name for s in winner.symbols]


def test_spamd_down_is_unavailable():
    with pytest.raises(ScannerUnavailable):
        run(_spam(f"spamd://127.0.0.1:{free_port()}", raw(message())))


# The scan stage ---------------------------------------------------------------------------------

def scanner(rspamd_url: str | None, clamd_url: str | None) -> MessageScanner:
    return MessageScanner(spam=spam_engine_from_url(rspamd_url) if rspamd_url else None,
                          virus=virus_engine_from_url(clamd_url) if clamd_url else None, hostname="mx.test")


async def _scan(s: MessageScanner, data: bytes, auth, domains=()):
    """Run the stage; ``auth`` is an awaitable, or AuthResults to hand over already finished."""
    if isinstance(auth, AuthResults):
        done = asyncio.get_running_loop().create_future()
        done.set_result(auth)
        auth = done
    try:
        return await s(ENVELOPE, data, auth, list(domains))
    finally:
        await s.aclose()


def test_virus_scan_runs_while_authentication_is_still_running(clamd_server, rspamd_server):
    """Authentication here finishes only once the virus scan has: a stage that waited for
    authentication before scanning for viruses would never finish (caught by the timeout)."""
    s = scanner(rspamd_server.url, clamd_server.url)
    virus_done = asyncio.Event()
    real_scan = s.virus.scan

    async def observed_scan(data):
        try:
            return await real_scan(data)
        finally:
            virus_done.set()

    s.virus.scan = observed_scan

    async def authenticate():
        await virus_done.wait()
        return AuthResults(spf=SpfResult("pass", "example.org"))

    async def main():
        auth = asyncio.ensure_future(authenticate())
        return await asyncio.wait_for(_scan(s, raw(message()), auth), 30)

    result = run(main())
    assert result.virus_check.verdict == "clean"
    assert result.spam_check.verdict == "ham"
    # rspamd got the authentication verdicts, so it scanned after authentication finished.
    assert "R_SPF_ALLOW" in [x.name for x in result.spam_check.symbols]
    assert any(h.startswith("X-Spam-Status: No,") for h in result.headers)
    assert "X-Virus-Status: Clean" in result.headers


def test_paused_clamd_hits_the_deadline(clamd_server):
    s = scanner(None, clamd_server.url.replace("timeout=5", "timeout=0.5"))
    clamd_server.pause()
    try:
        result = run(_scan(s, raw(message()), AuthResults()))
    finally:
        clamd_server.resume()
    assert (result.virus_check.verdict, result.virus_check.failure) == ("unscanned", "timeout")
    assert "X-Virus-Status: Unscanned (timeout)" in result.headers


def test_blocked_sender_is_not_scanned_and_allowed_sender_skips_spam_only(clamd_server):
    # Engines on ports where nothing listens: a blocked sender never reaches them.
    dead = scanner(f"rspamd://127.0.0.1:{free_port()}", f"clamd://127.0.0.1:{free_port()}")
    blocks = DomainInfo("dom_1", "acc_1", "example.com", False, True,
                        DomainPolicy(sender_blocklist=("example.org",)))
    result = run(_scan(dead, raw(message()), AuthResults(), [blocks]))
    assert result.sender_list.action == "block"
    assert result.spam_check.engine == "sender_blocklist" and result.spam_check.failure is None
    assert result.virus_check.failure is None

    allows = DomainInfo("dom_2", "acc_1", "example.net", False, True,
                        DomainPolicy(sender_allowlist=("alice@example.org",)))
    s = scanner(f"rspamd://127.0.0.1:{free_port()}", clamd_server.url)  # rspamd "down" must not matter
    data = raw(message(gtube(), attachments=[(eicar(), "application/octet-stream", "eicar.com")]))
    result = run(_scan(s, data, AuthResults(), [allows]))
    assert result.spam["verdict"] == "ham" and result.spam["engine"] == "sender_allowlist"
    assert result.spam_check.failure is None
    assert result.virus["verdict"] == "infected"  # the virus scan still ran
