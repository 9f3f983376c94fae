"""End to end through real processes: ``mailkite serve`` (MX, IMAP, web, worker, our Redis), the
``domain verify`` / ``app-password`` CLI, mail over SMTP, and an IDLE client woken by it."""

from __future__ import annotations

import re
import smtplib
import time

import imapclient
import pytest

from tests.support.imap import client_context
from tests.support.instance import MailkiteInstance
from tests.support.dns_server import DnsTestServer, Zone
from tests.support.servers import wait_for_port

pytestmark = pytest.mark.slow


@pytest.fixture
def dns():
    zone = (Zone().add("verified.test", "MX", "10 mx.mailkite.test").add("elsewhere.test", "MX", "10 mx.other.example")
            .add("nomx.test", "A", "192.0.2.1"))
    with DnsTestServer(zone) as server:
        yield server


def test_serve_verify_password_smtp_idle_revoke(instance, dns):
    instance.extra_env["MAILKITE_DNS_NAMESERVERS"] = dns.nameserver
    instance.add_domain("verified.test")
    instance.add_domain("elsewhere.test")
    assert "verified.test verified: MX mx.mailkite.test" in instance.cli("domain", "verify", "verified.test").stdout
    refused = instance.cli("domain", "verify", "elsewhere.test", check=False)
    assert refused.returncode == 1 and "its MX points at mx.other.example, not mx.mailkite.test" in refused.stderr
    instance.add_domain("nomx.test")
    refused = instance.cli("domain", "verify", "nomx.test", check=False)
    assert refused.returncode == 1 and refused.stderr == (
        "mailkite: nomx.test is not verified: it has no MX record (publish one pointing at mx.mailkite.test)\n")

    out = instance.cli("app-password", "create", "--label", "Thunderbird on my laptop",
                       "--scope", "bob@verified.test").stdout
    password = re.search(r"IMAP password \(shown once\): (mk_imap_[A-Za-z0-9]{40})\b", out).group(1)
    pid = re.search(r"created app-password (imp_\w+)", out).group(1)
    other = instance.cli("app-password", "create", "--label", "elsewhere", "--scope", "elsewhere.test").stdout
    other_pw = re.search(r"(mk_imap_\w+)", other).group(1)
    bad = instance.cli("app-password", "create", "--label", "x", "--scope", "nosuch.test", check=False)
    assert bad.returncode == 1 and "no domain nosuch.test" in bad.stderr
    listing = instance.cli("app-password", "list").stdout
    assert "Thunderbird on my laptop" in listing and password not in listing and password[:16] + "…" in listing

    instance.start("serve")
    wait_for_port(instance.imap_port, timeout=60)
    assert f"IMAP (implicit TLS)  127.0.0.1:{instance.imap_port}" in instance.log_text("serve")

    ctx = client_context(instance.data_dir / "tls" / "selfsigned.crt")
    refused_login = imapclient.IMAPClient("127.0.0.1", port=instance.imap_port, ssl=True, ssl_context=ctx)
    with pytest.raises(imapclient.exceptions.LoginError, match="not verified"):
        refused_login.login("x", other_pw)

    client = imapclient.IMAPClient("127.0.0.1", port=instance.imap_port, ssl=True, ssl_context=ctx)
    client.login("bob@verified.test", password)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.idle()
    start = time.monotonic()
    with smtplib.SMTP("127.0.0.1", instance.mx_port) as smtp:
        smtp.sendmail("alice@example.org", ["bob@verified.test", "carol@verified.test"],
                      b"From: alice@example.org\r\nTo: bob@verified.test\r\nSubject: over SMTP\r\n\r\nhello\r\n")
    got = client.idle_check(timeout=10)
    latency = time.monotonic() - start
    assert (1, b"EXISTS") in got, got
    client.idle_done()
    fetched = client.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    assert fetched[1][b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: over SMTP\r\n\r\n"
    assert latency < 10

    assert re.search(r"Thunderbird on my laptop .* \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+active",
                     instance.cli("app-password", "list").stdout)
    assert f"app-password {pid}" in instance.cli("app-password", "revoke", pid).stdout
    with pytest.raises((imapclient.exceptions.IMAPClientAbortError, OSError)):
        client.noop()
        client.noop()
    again = imapclient.IMAPClient("127.0.0.1", port=instance.imap_port, ssl=True, ssl_context=ctx)
    with pytest.raises(imapclient.exceptions.LoginError, match="revoked"):
        again.login("bob", password)
    assert "revoked" in instance.cli("app-password", "list").stdout
    missing = instance.cli("app-password", "revoke", "imp_nope", check=False)
    assert missing.returncode == 1 and "no app-password imp_nope" in missing.stderr


def test_revoke_beside_serve_with_embedded_redis_ends_idle_at_once(tmp_path, dns):
    """Without MAILKITE_REDIS_URL, ``serve`` embeds a Redis and records its URL in DATA_DIR, so the
    CLI's revocation event still reaches a client sitting in IDLE at once (the IMAP process's
    safety refresh, a minute by default, would be the only other way)."""
    inst = MailkiteInstance(data_dir=tmp_path / "var")
    inst.extra_env["MAILKITE_DNS_NAMESERVERS"] = dns.nameserver
    try:
        inst.add_domain("verified.test")
        inst.cli("domain", "verify", "verified.test")
        out = inst.cli("app-password", "create", "--label", "phone", "--scope", "verified.test").stdout
        password = re.search(r"(mk_imap_\w+)", out).group(1)
        pid = re.search(r"created app-password (imp_\w+)", out).group(1)
        inst.start("serve")
        wait_for_port(inst.imap_port, timeout=60)
        assert (inst.data_dir / "redis.url").read_text().startswith("unix://")
        client = imapclient.IMAPClient("127.0.0.1", port=inst.imap_port, ssl=True,
                                       ssl_context=client_context(inst.data_dir / "tls" / "selfsigned.crt"))
        client.login("anyone", password)
        client.select_folder("INBOX")
        client.idle()
        start = time.monotonic()
        inst.cli("app-password", "revoke", pid)
        got = client.idle_check(timeout=20)
        # imapclient splits the untagged BYE's text into atoms.
        assert got == [(b"BYE", b"this", b"app-password", b"has", b"been", b"revoked")], got
        assert time.monotonic() - start < 20
        inst.stop("serve")
        assert not (inst.data_dir / "redis.url").exists()
    finally:
        inst.stop_all()
