"""End to end over SMTP: ``mailkite serve`` with its nameservers pointed at our test DNS server
(``MAILKITE_DNS_NAMESERVERS``, as a user would configure it); the webhook's ``auth`` object, the
stored raw message's ``Authentication-Results`` field, and ``dmarc_reject`` refusing in-session."""

from __future__ import annotations

import smtplib

import httpx
import pytest

from tests.support.dkim_signers import DkimKey
from tests.support.dns_server import DnsTestServer, Zone

pytestmark = pytest.mark.slow

SENDER = DkimKey.generate("rsa", 2048, domain="sender.test", selector="mail")


def _zone() -> Zone:
    zone = Zone()
    zone.add("sender.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    zone.add(SENDER.record_name, "TXT", SENDER.txt_record)
    zone.add("_dmarc.sender.test", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@sender.test")
    zone.add("bank.test", "TXT", "v=spf1 ip4:192.0.2.10 -all")
    zone.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=reject")
    zone.add("attacker.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    return zone


def _message(from_addr: str, to: str, subject: str, extra: bytes = b"") -> bytes:
    body = b"".join(f"Line {i} of a realistic message body.\r\n".encode() for i in range(40))
    head = (f"From: {from_addr}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@e2e.test>\r\n"
            "\r\n")
    return extra + head.encode() + body


def test_auth_over_smtp(tmp_path, instance, receiver):
    with DnsTestServer(_zone()) as dns:
        instance.extra_env["MAILKITE_DNS_NAMESERVERS"] = dns.nameserver
        instance.add_domain("inbox.test")
        instance.add_domain("strict.test")
        instance.cli("domain", "set", "strict.test", "dmarc_reject=on")
        instance.add_webhook(receiver.url)
        instance.start("serve")

        forged = b"Authentication-Results: mx.mailkite.test; dkim=pass header.d=bank.test; dmarc=pass\r\n"
        good = SENDER.sign_dkimpy(_message("Alice <alice@sender.test>", "support@inbox.test", "signed hello",
                                           extra=forged))
        spoof = _message("Bank <security@bank.test>", "someone@strict.test", "spoofed")
        spoof_lax = _message("Bank <security@bank.test>", "someone@inbox.test", "spoofed lax")

        with smtplib.SMTP("127.0.0.1", instance.mx_port, local_hostname="client.sender.test", timeout=30) as smtp:
            smtp.sendmail("alice@sender.test", ["support@inbox.test"], good)
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("mallory@attacker.test", ["someone@strict.test"], spoof)
            smtp.sendmail("mallory@attacker.test", ["someone@inbox.test"], spoof_lax)

        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.startswith(b"5.7.1 ")
        assert b"DMARC" in refused.value.smtp_error

        hooks = {r.json()["data"]["subject"]: r.json()["data"] for r in receiver.wait_for(2)}
        assert set(hooks) == {"signed hello", "spoofed lax"}

        auth = hooks["signed hello"]["auth"]
        assert auth["spf"]["result"] == "pass" and auth["spf"]["domain"] == "sender.test"
        assert [(d["result"], d["domain"], d["selector"]) for d in auth["dkim"]] == [("pass", "sender.test", "mail")]
        assert {k: auth["dmarc"][k] for k in ("result", "policy", "domain")} == \
            {"result": "pass", "policy": "reject", "domain": "sender.test"}
        assert auth["arc"]["result"] == "none"
        assert auth["decision"] == "ok"

        lax = hooks["spoofed lax"]["auth"]
        assert (lax["dmarc"]["result"], lax["dmarc"]["disposition"]) == ("fail", "reject")
        assert lax["spf"]["result"] == "pass" and lax["spf"]["domain"] == "attacker.test"  # not aligned
        assert lax["decision"] == "dmarc_quarantine"

        raw = httpx.get(hooks["signed hello"]["raw_url"], timeout=10).content
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"Authentication-Results: mx.mailkite.test;\r\n\tspf=pass")
        assert b"dkim=pass" in head.split(b"\r\nDKIM-Signature", 1)[0]
        assert head.count(b"Authentication-Results:") == 1  # the forged one is gone (RFC 8601 5)
        assert b"header.d=bank.test" not in raw

        log = instance.log_text("serve")
        assert '"reason": "dmarc_reject"' in log or '"reason":"dmarc_reject"' in log
