"""DMARC (RFC 7489): the pure evaluation as tables, record parsing, From extraction, and policy
discovery plus whole-message verdicts against a real DNS server (authheaders' published cases)."""

from __future__ import annotations

import re

import pytest

from inbound.auth import DmarcSyntaxError
from inbound.auth.dmarc import aligned, evaluate, from_domains, organizational_domain, parse_record, strictest
from inbound.auth.results import DkimResult, DmarcLookup, DmarcRecord, DmarcResult, SpfResult
from tests.support.auth_run import authenticate
from tests.support.dns_server import DnsTestServer, Zone
from tests.support.corpus import CORPUS as SHARED_CORPUS

CORPUS = SHARED_CORPUS / "authheaders"


def _lookup(from_domain="example.com", record_domain="example.com", exists=True, **record) -> DmarcLookup:
    rec = DmarcRecord(**{"p": "reject", "sp": "reject", **record})
    return DmarcLookup("found", from_domain, organizational_domain(from_domain), rec, record_domain, None, exists)


PASS_SPF = SpfResult("pass", "example.com", "mailfrom")
NO_SPF = SpfResult("none", None)


def _dkim(result="pass", domain="example.com"):
    return (DkimResult(result, domain, "sel", "rsa-sha256"),)


# Alignment (§3.1) ----------------------------------------------------------------------------------

@pytest.mark.parametrize("identifier, from_domain, mode, expected", [
    ("example.com", "example.com", "s", True),
    ("mail.example.com", "example.com", "s", False),
    ("mail.example.com", "example.com", "r", True),
    ("example.com", "news.example.com", "r", True),
    ("a.example.com", "b.example.com", "r", True),
    ("example.net", "example.com", "r", False),
    ("Example.COM.", "example.com", "s", True),
    ("evil.co.uk", "bank.co.uk", "r", False),  # public suffix: different organizations
    ("x.bank.co.uk", "bank.co.uk", "r", True),
    ("a.github.io", "b.github.io", "r", False),  # private-section public suffix
    (None, "example.com", "r", False),
])
def test_alignment(identifier, from_domain, mode, expected):
    assert aligned(identifier, from_domain, mode) is expected


# evaluate(): the result table ----------------------------------------------------------------------

@pytest.mark.parametrize("case, lookup, spf, dkim, expected", [
    ("dkim aligned relaxed", _lookup(), NO_SPF, _dkim("pass", "mail.example.com"), ("pass", "none")),
    ("dkim aligned strict fails", _lookup(adkim="s"), NO_SPF, _dkim("pass", "mail.example.com"), ("fail", "reject")),
    ("spf aligned relaxed", _lookup(), SpfResult("pass", "bounce.example.com"), (), ("pass", "none")),
    ("spf strict needs exact domain", _lookup(aspf="s"), SpfResult("pass", "bounce.example.com"), (),
     ("fail", "reject")),
    ("spf exact under strict", _lookup(aspf="s"), PASS_SPF, (), ("pass", "none")),
    ("unaligned dkim pass", _lookup(), NO_SPF, _dkim("pass", "mailer.example.net"), ("fail", "reject")),
    ("unaligned spf pass", _lookup(), SpfResult("pass", "esp.example.net"), (), ("fail", "reject")),
    ("aligned but failing", _lookup(), SpfResult("fail", "example.com"), _dkim("fail"), ("fail", "reject")),
    ("one aligned pass of several", _lookup(), NO_SPF,
     _dkim("fail") + _dkim("pass", "example.net") + _dkim("pass", "example.com"), ("pass", "none")),
    ("policy none", _lookup(p="none", sp="none"), NO_SPF, (), ("fail", "none")),
    ("quarantine", _lookup(p="quarantine", sp="quarantine"), NO_SPF, (), ("fail", "quarantine")),
    ("aligned dkim temperror", _lookup(), NO_SPF, _dkim("temperror"), ("temperror", "none")),
    ("aligned spf temperror", _lookup(), SpfResult("temperror", "example.com"), (), ("temperror", "none")),
    ("unaligned temperror is still fail", _lookup(), SpfResult("temperror", "example.net"), (), ("fail", "reject")),
    ("temperror but another passes", _lookup(), SpfResult("temperror", "example.com"), _dkim("pass"),
     ("pass", "none")),
])
def test_evaluate_results(case, lookup, spf, dkim, expected):
    result = evaluate(lookup, spf, dkim)
    assert (result.result, result.disposition) == expected, case


@pytest.mark.parametrize("lookup, expected_policy", [
    (_lookup(p="none", sp="reject"), "none"),  # the From domain's own record: p
    (_lookup("news.example.com", "example.com", p="none", sp="reject"), "reject"),  # org record: sp
    (_lookup("news.example.com", "news.example.com", p="none", sp="reject"), "none"),  # own record at sub: p
    (_lookup("gone.example.com", "example.com", exists=False, p="none", sp="quarantine", np="reject"), "reject"),
    (_lookup("live.example.com", "example.com", exists=True, p="none", sp="quarantine", np="reject"),
     "quarantine"),
    (_lookup("gone.example.com", "example.com", exists=False, p="none", sp="quarantine"), "quarantine"),
])
def test_subdomain_and_non_existent_domain_policies(lookup, expected_policy):
    result = evaluate(lookup, NO_SPF, ())
    assert (result.result, result.policy, result.disposition) == ("fail", expected_policy, expected_policy)


@pytest.mark.parametrize("pct, sample, policy, disposition", [
    (100, 0.999, "reject", "reject"),
    (50, 0.49, "reject", "reject"),
    (50, 0.50, "reject", "quarantine"),  # not sampled: the next lower policy (§6.6.4)
    (0, 0.0, "reject", "quarantine"),
    (20, 0.7, "quarantine", "none"),
    (20, 0.1, "quarantine", "quarantine"),
])
def test_pct_sampling(pct, sample, policy, disposition):
    result = evaluate(_lookup(p=policy, sp=policy, pct=pct), NO_SPF, (), sample=sample)
    assert (result.result, result.policy, result.pct, result.disposition) == ("fail", policy, pct, disposition)


@pytest.mark.parametrize("status", ["none", "temperror", "permerror"])
def test_lookup_status_becomes_the_result(status):
    lookup = DmarcLookup(status, "example.com", "example.com", reason="why")
    result = evaluate(lookup, PASS_SPF, _dkim())
    assert (result.result, result.reason, result.disposition) == (status, "why", "none")


def test_strictest_prefers_the_failure_with_the_strongest_policy():
    passing = DmarcResult("pass", "example.org", policy="none")
    weak = DmarcResult("fail", "a.example", policy="none", disposition="none")
    strong = DmarcResult("fail", "example.com", policy="reject", disposition="reject")
    assert strictest([passing, weak, strong]) is strong
    assert strictest([passing]) is passing
    assert strictest([]) is None


# Records and From ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("v=DMARC1; p=reject", DmarcRecord("reject", "reject")),
    ("v=DMARC1; p=quarantine; sp=none; pct=30; adkim=s; aspf=s",
     DmarcRecord("quarantine", "none", None, 30, "s", "s")),
    ("v=DMARC1;p=none;sp=quarantine;np=reject", DmarcRecord("none", "quarantine", "reject")),
    ("v=DMARC1; p=reject; rua=mailto:reports@elsewhere.example; ruf=mailto:x@y.example",
     DmarcRecord("reject", "reject")),
    ("v=DMARC1; p=reject; unknown=tag", DmarcRecord("reject", "reject")),
    ("V=DMARC1; P=Reject", DmarcRecord("reject", "reject")),
])
def test_parse_record(text, expected):
    assert parse_record(text) == expected


@pytest.mark.parametrize("text", ["v=DMARC1; p=none; reject", "v=DMARC1; p=bogus", "v=DMARC1; p=reject; pct=150",
                                  "v=DMARC1; p=reject; pct=abc", "v=DMARC1; p=reject; p=none"])
def test_parse_record_rejects_bad_syntax(text):
    with pytest.raises(DmarcSyntaxError):
        parse_record(text)


@pytest.mark.parametrize("raw, expected", [
    (b"From: Alice <alice@Example.COM>\r\n\r\nx", ["example.com"]),
    (b"From: \"Doe, Jane\" <jane@example.com>\r\n\r\nx", ["example.com"]),
    (b"From: a@one.example, b@two.example, c@one.example\r\n\r\nx", ["one.example", "two.example"]),
    (b"From: a@one.example\r\nFrom: b@two.example\r\n\r\nx", ["one.example", "two.example"]),
    (b"From: =?utf-8?q?J=C3=B6rg?= <j@example.de>\r\n\r\nx", ["example.de"]),
    (b"From: undisclosed\r\n\r\nx", []),
    (b"Subject: no from\r\n\r\nFrom: body@example.com\r\n", []),
    (b"From: user@b\xc3\xbccher.example\n\nx", ["xn--bcher-kva.example"]),
])
def test_from_domains(raw, expected):
    assert from_domains(raw) == expected


# Against DNS: the authheaders cases ------------------------------------------------------------------

def _expected_dmarc(name: str) -> tuple[str, str | None]:
    text = (CORPUS / f"{name}.expected-auth.txt").read_text()
    m = re.search(r"^dmarc: (\w+)(?:\s+policy=(\w+))?", text, re.M)
    return m.group(1), m.group(2)


@pytest.mark.parametrize("name", ["test_signed", "testcomma", "test_multi", "test_multi2", "test_sub", "test_np1",
                                  "test_bad"])
def test_authheaders_dmarc_verdicts(name):
    result, policy = _expected_dmarc(name)
    with DnsTestServer(Zone().load_corpus(CORPUS / f"{name}.dns.txt")) as server:
        auth = authenticate((CORPUS / f"{name}.eml").read_bytes(), server.nameserver)
    assert auth.dmarc.result == result, auth.dmarc.reason
    if policy:
        assert auth.dmarc.policy == policy
    header_from = re.search(r"header\.from=(\S+)", (CORPUS / f"{name}.expected-auth.txt").read_text()).group(1)
    assert auth.dmarc.domain == header_from


def test_policy_discovery_falls_back_to_the_organizational_domain_once():
    zone = Zone().add("_dmarc.example.net", "TXT", "v=DMARC1; p=quarantine; sp=reject")
    zone.add("_dmarc.a.b.example.net", "TXT", "some unrelated text")  # not a DMARC record: ignored
    raw = b"From: x@a.b.example.net\r\n\r\nbody\r\n"
    with DnsTestServer(zone) as server:
        auth = authenticate(raw, server.nameserver)
        asked = sorted({n for n, t in server.queries if n.startswith("_dmarc.")})
    assert (auth.dmarc.result, auth.dmarc.policy, auth.dmarc.record_domain) == ("fail", "reject", "example.net")
    assert asked == ["_dmarc.a.b.example.net", "_dmarc.example.net"]  # no walk through b.example.net


def test_two_records_mean_no_policy():
    zone = Zone().add("_dmarc.example.net", "TXT", "v=DMARC1; p=reject").add("_dmarc.example.net", "TXT",
                                                                             "v=DMARC1; p=none")
    with DnsTestServer(zone) as server:
        auth = authenticate(b"From: x@example.net\r\n\r\nbody\r\n", server.nameserver)
    assert auth.dmarc.result == "none"


def test_policy_lookup_failure_is_temperror():
    zone = Zone()
    zone.servfail.add("_dmarc.example.net")
    with DnsTestServer(zone) as server:
        auth = authenticate(b"From: x@example.net\r\n\r\nbody\r\n", server.nameserver)
    assert auth.dmarc.result == "temperror"
    assert auth.dmarc.domain == "example.net"
