"""ARC chains sealed by dkimpy (RFC 8617), the Authentication-Results field we write (RFC 8601),
the removal of forged ones (§5), and the DMARC enforcement rule."""

from __future__ import annotations

import time

import authres
import authres.arc  # noqa: F401 - registers the arc method
import authres.dmarc  # noqa: F401
import dkim
import pytest

from inbound.auth.results import DmarcResult
from inbound.auth.results_header import authserv_id_of, strip_own_results
from inbound.policy import Facts, decide
from inbound.types import AuthResults, ScanResults
from store.domains import DomainInfo, DomainPolicy
from tests.support.auth_run import AUTHSERV_ID, authenticate
from tests.support.dkim_signers import DkimKey
from tests.support.dns_server import DnsTestServer, SilentDns, Zone

LIST = DkimKey.generate("rsa", 2048, domain="lists.example.org", selector="arc")
FORWARDER = DkimKey.generate("rsa", 1024, domain="fwd.example.net", selector="arc2")
AUTHOR = DkimKey.generate("ed25519", domain="example.com", selector="ed")

ORIGINAL = (b"From: Jane <jane@example.com>\r\nTo: list@lists.example.org\r\nSubject: ARC\r\n"
            b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <arc@example.com>\r\n\r\nHello list\r\n")


def _seal(message: bytes, key: DkimKey, results: str) -> bytes:
    srv_id = key.domain.encode()
    message = f"Authentication-Results: {key.domain}; {results}\r\n".encode() + message
    headers = dkim.arc_sign(message, key.selector.encode(), key.domain.encode(), key.dkimpy_private, srv_id)
    return b"".join(headers) + message


@pytest.fixture(scope="module")
def dns():
    zone = Zone()
    for key in (LIST, FORWARDER, AUTHOR):
        zone.add(key.record_name, "TXT", key.txt_record)
    zone.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    with DnsTestServer(zone) as server:
        yield server


def test_no_arc_headers_is_none(dns):
    assert authenticate(ORIGINAL, dns.nameserver).arc.result == "none"


def test_one_seal_passes(dns):
    sealed = _seal(AUTHOR.sign_dkimpy(ORIGINAL), LIST, "dkim=pass header.d=example.com")
    auth = authenticate(sealed, dns.nameserver)
    assert (auth.arc.result, auth.arc.sealers, auth.arc.instances) == ("pass", ("lists.example.org",), 1)


def test_two_seals_pass_in_order(dns):
    once = _seal(AUTHOR.sign_dkimpy(ORIGINAL), LIST, "dkim=pass header.d=example.com")
    twice = _seal(once, FORWARDER, "arc=pass")
    arc = authenticate(twice, dns.nameserver).arc
    assert (arc.result, arc.sealers) == ("pass", ("lists.example.org", "fwd.example.net"))


def test_message_changed_after_sealing_fails(dns):
    sealed = _seal(ORIGINAL, LIST, "dkim=none")
    arc = authenticate(sealed.replace(b"Hello list", b"Hello world"), dns.nameserver).arc
    assert arc.result == "fail"
    assert arc.reason


def test_unreachable_dns_is_temperror_not_fail():
    sealed = _seal(ORIGINAL, LIST, "dkim=none")
    silent = SilentDns()
    try:
        auth = authenticate(sealed, silent.nameserver, dns_timeout=0.3, spf_timeout_s=1, dkim_timeout_s=1,
                            dmarc_timeout_s=1)
    finally:
        silent.close()
    assert auth.arc.result == "temperror"


# Authentication-Results ---------------------------------------------------------------------------

def test_header_is_valid_rfc8601_with_every_method(dns):
    signed = AUTHOR.sign_dkimpy(ORIGINAL)
    auth = authenticate(signed, dns.nameserver, mail_from="jane@example.com")
    assert auth.header.startswith(f"Authentication-Results: {AUTHSERV_ID};\r\n\t")
    assert all(len(line) <= 998 for line in auth.header.split("\r\n"))
    unfolded = auth.header.replace("\r\n", "")
    parsed = authres.all_features().parse(unfolded)
    assert parsed.authserv_id == AUTHSERV_ID
    by_method = {r.method: r for r in parsed.results}
    assert by_method["dkim"].result == "pass"
    assert by_method["dkim"].header_d == "example.com"
    assert by_method["dkim"].header_s == "ed"
    assert by_method["dkim"].header_a == "ed25519-sha256"
    assert by_method["spf"].result == "none"
    assert by_method["spf"].smtp_mailfrom == "jane@example.com"
    assert (by_method["dmarc"].result, by_method["dmarc"].header_from, by_method["dmarc"].policy) == \
        ("pass", "example.com", "reject")
    assert by_method["arc"].result == "none"


def test_webhook_auth_object_has_the_design_shape(dns):
    auth = authenticate(AUTHOR.sign_dkimpy(ORIGINAL), dns.nameserver, mail_from="jane@example.com")
    body = auth.to_json()
    assert body["spf"]["result"] == "none" and body["spf"]["domain"] == "example.com"
    assert body["dkim"] == [{"result": "pass", "domain": "example.com", "selector": "ed",
                             "algorithm": "ed25519-sha256", "reason": None}]
    assert {k: body["dmarc"][k] for k in ("result", "policy", "domain")} == \
        {"result": "pass", "policy": "reject", "domain": "example.com"}
    assert body["arc"]["result"] == "none"


FORGED = (b"Authentication-Results: MX.mailkite.TEST; dkim=pass header.d=bank.example\r\n"
          b"Authentication-Results: (comment) mx.mailkite.test\r\n\t1; spf=pass\r\n"
          b"Authentication-Results: \"mx.mailkite.test\"; dmarc=pass\r\n"
          b"Authentication-Results: relay.example.net; spf=pass smtp.mailfrom=a@example.net\r\n"
          b"ARC-Authentication-Results: i=1; mx.mailkite.test; spf=pass\r\n"
          b"authentication-results:mx.mailkite.test;none\r\n"
          b"Subject: hi\r\n"
          b"\r\n"
          b"Authentication-Results: mx.mailkite.test; this is the body\r\n")


def test_strip_removes_only_fields_claiming_our_authserv_id():
    stripped = strip_own_results(FORGED, "mx.mailkite.test")
    assert stripped == (b"Authentication-Results: relay.example.net; spf=pass smtp.mailfrom=a@example.net\r\n"
                        b"ARC-Authentication-Results: i=1; mx.mailkite.test; spf=pass\r\n"
                        b"Subject: hi\r\n"
                        b"\r\n"
                        b"Authentication-Results: mx.mailkite.test; this is the body\r\n")


def test_strip_keeps_bytes_when_nothing_is_ours():
    raw = b"Authentication-Results: other.example; spf=pass\nSubject: x\n\nbody\n"
    assert strip_own_results(raw, "mx.mailkite.test") is raw
    lf = FORGED.replace(b"\r\n", b"\n")
    assert strip_own_results(lf, "mx.mailkite.test").startswith(b"Authentication-Results: relay.example.net")


@pytest.mark.parametrize("value, expected", [
    (" mx.example.com; spf=pass", "mx.example.com"),
    (" (nested (comment)) MX.Example.com 1; none", "mx.example.com"),
    (' "mx.example.com"; dkim=pass', "mx.example.com"),
    ("\r\n\tmx.example.com;\r\n\tspf=pass", "mx.example.com"),
    ("   ", None),
])
def test_authserv_id_of(value, expected):
    assert authserv_id_of(value) == expected


# The dmarc_reject rule ----------------------------------------------------------------------------

def _domain(name: str, dmarc_reject: bool) -> DomainInfo:
    return DomainInfo(f"dom_{name}", "acc_1", name, False, True, DomainPolicy(dmarc_reject=dmarc_reject))


@pytest.mark.parametrize("dmarc, domains, action, reason", [
    (DmarcResult("fail", "example.com", "reject", "reject"), [True], "reject", "dmarc_reject"),
    (DmarcResult("fail", "example.com", "reject", "reject"), [False], "accept", "dmarc_quarantine"),
    (DmarcResult("fail", "example.com", "reject", "reject"), [False, True], "reject", "dmarc_reject"),
    (DmarcResult("fail", "example.com", "reject", "quarantine"), [True], "accept", "dmarc_quarantine"),  # pct
    (DmarcResult("fail", "example.com", "quarantine", "quarantine"), [True], "accept", "dmarc_quarantine"),
    (DmarcResult("fail", "example.com", "none", "none"), [True], "accept", "ok"),
    (DmarcResult("pass", "example.com", "reject", "none"), [True], "accept", "ok"),
    (DmarcResult("temperror", "example.com", "reject", "none"), [True], "accept", "ok"),
    (DmarcResult("permerror", "example.com", None, "none"), [True], "accept", "ok"),
    (DmarcResult("none", "example.com"), [True], "accept", "ok"),
])
def test_dmarc_rule(dmarc, domains, action, reason):
    facts = Facts(domains=tuple(_domain(f"d{i}.test", on) for i, on in enumerate(domains)),
                  auth=AuthResults(dmarc=dmarc), scan=ScanResults(), mail_from="x@example.com")
    decision = decide(facts)
    assert (decision.action, decision.reason) == (action, reason)
    if action == "reject":
        assert decision.reply.startswith("550 5.7.1 ")


def test_total_time_is_bounded_when_dns_never_answers():
    silent = SilentDns()
    signed = _seal(AUTHOR.sign_dkimpy(ORIGINAL), LIST, "dkim=pass")
    try:
        start = time.monotonic()
        auth = authenticate(signed, silent.nameserver, mail_from="jane@example.com", dns_timeout=5,
                            spf_timeout_s=1.0, dkim_timeout_s=1.0, dmarc_timeout_s=1.0)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert elapsed < 2.5
    assert (auth.spf.result, auth.dmarc.result, auth.arc.result) == ("temperror", "temperror", "temperror")
    assert [d.result for d in auth.dkim] == ["temperror"]
