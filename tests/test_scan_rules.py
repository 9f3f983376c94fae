"""The scan decisions as tables (pure functions: policy rules, sender lists, trace headers, URL and
answer parsing). The same behaviour against the real daemons is in test_scan_engines.py and, over
SMTP, in test_scan_smtp.py."""

from __future__ import annotations

import json

from inbound.auth.results import DkimResult, DmarcResult, SpfResult

import pytest

from inbound.policy import Facts, decide
from inbound.scan.clamd import parse_reply
from inbound.scan.engines import parse_scanner_url, spam_engine_from_url, virus_engine_from_url
from inbound.scan.errors import InvalidScannerUrl, MessageTooLarge, ScanProtocolError
from inbound.scan.headers import spam_fields, virus_fields
from inbound.scan.lists import match_sender_lists, normalize_senders
from inbound.scan.results import SenderListMatch, SpamCheck, SpamSymbol, VirusCheck
from inbound.scan.rspamd import auth_request_headers, parse_checkv2
from inbound.types import AuthResults, ScanResults
from store.domains import DomainInfo, DomainPolicy
from store.errors import InvalidInput


def domain(name: str = "example.com", **policy) -> DomainInfo:
    return DomainInfo(f"dom_{name}", "acc_1", name, False, True, DomainPolicy(**policy))


def facts(*domains: DomainInfo, spam: SpamCheck = SpamCheck(), virus: VirusCheck = VirusCheck(),
          listed: SenderListMatch | None = None) -> Facts:
    return Facts(domains=domains or (domain(),), auth=AuthResults(),
                 scan=ScanResults(spam_check=spam, virus_check=virus, sender_list=listed), mail_from="a@example.org")


HAM = SpamCheck("ham", 1.0, 15.0, "rspamd")
SPAM = SpamCheck("spam", 15.0, 15.0, "rspamd", (SpamSymbol("GTUBE", 0.0),))
CLEAN = VirusCheck("clean", "clamav")
INFECTED = VirusCheck("infected", "clamav", ("Eicar-Test-Signature",))
DOWN_SPAM = SpamCheck(engine="rspamd", failure="unavailable")
SLOW_VIRUS = VirusCheck(engine="clamav", failure="timeout")
BIG_VIRUS = VirusCheck(engine="clamav", failure="too_large")
BLOCKED = SenderListMatch("block", "example.org", "a@example.org", "example.com")
ALLOWED = SenderListMatch("allow", "example.org", "a@example.org", "example.com")


@pytest.mark.parametrize("case, expected", [
    (facts(spam=HAM, virus=CLEAN), ("accept", "ok", None)),
    (facts(), ("accept", "ok", None)),  # nothing configured: unscanned, accepted
    (facts(spam=SPAM, virus=CLEAN), ("accept", "ok", None)),  # spam is a verdict, not a refusal, by default
    (facts(spam=HAM, virus=INFECTED), ("reject", "virus", "554 5.7.1")),
    (facts(domain(scan_fail_open=True), spam=HAM, virus=INFECTED), ("reject", "virus", "554 5.7.1")),
    (facts(domain(spam_reject_score=10.0), spam=SPAM, virus=CLEAN), ("reject", "spam_reject", "550 5.7.1")),
    (facts(domain(spam_reject_score=20.0), spam=SPAM, virus=CLEAN), ("accept", "ok", None)),
    (facts(domain(spam_reject_score=1.0), spam=HAM, virus=CLEAN), ("reject", "spam_reject", "550 5.7.1")),
    (facts(domain(spam_reject_score=10.0), spam=DOWN_SPAM, virus=CLEAN), ("defer", "scanner_unavailable", "451 4.7.1")),
    (facts(spam=DOWN_SPAM, virus=CLEAN), ("defer", "scanner_unavailable", "451 4.7.1")),
    (facts(spam=HAM, virus=SLOW_VIRUS), ("defer", "scanner_unavailable", "451 4.7.1")),
    (facts(domain(scan_fail_open=True), spam=DOWN_SPAM, virus=SLOW_VIRUS), ("accept", "ok", None)),
    (facts(spam=HAM, virus=BIG_VIRUS), ("reject", "scan_too_large", "552 5.3.4")),
    (facts(domain(scan_fail_open=True), spam=HAM, virus=BIG_VIRUS), ("accept", "ok", None)),
    # A definite refusal beats a deferral: malware found while the spam scanner is down.
    (facts(spam=DOWN_SPAM, virus=INFECTED), ("reject", "virus", "554 5.7.1")),
    (facts(spam=SpamCheck("spam", 0.0, None, "sender_blocklist"), listed=BLOCKED),
     ("reject", "sender_blocklist", "550 5.7.1")),
    # An allow-listed sender is never refused for spam, but malware still is.
    (facts(domain(spam_reject_score=1.0), spam=SpamCheck("ham", 0.0, None, "sender_allowlist"), virus=CLEAN,
           listed=ALLOWED), ("accept", "ok", None)),
    (facts(domain(spam_reject_score=1.0), spam=SpamCheck("ham", 0.0, None, "sender_allowlist"), virus=INFECTED,
           listed=ALLOWED), ("reject", "virus", "554 5.7.1")),
    # Multi-domain transactions: the strictest domain decides.
    (facts(domain("a.test", scan_fail_open=True), domain("b.test"), spam=DOWN_SPAM, virus=CLEAN),
     ("defer", "scanner_unavailable", "451 4.7.1")),
    (facts(domain("a.test", scan_fail_open=True), domain("b.test", scan_fail_open=True), spam=DOWN_SPAM,
           virus=CLEAN), ("accept", "ok", None)),
    (facts(domain("a.test", spam_reject_score=50.0), domain("b.test", spam_reject_score=12.0), spam=SPAM,
           virus=CLEAN), ("reject", "spam_reject", "550 5.7.1")),
])
def test_decide(case: Facts, expected):
    decision = decide(case)
    assert (decision.action, decision.reason) == expected[:2]
    if expected[2]:
        assert decision.reply.startswith(expected[2] + " ")
    else:
        assert decision.reply is None


def test_virus_reply_names_the_signature():
    assert "Eicar-Test-Signature" in decide(facts(virus=INFECTED)).reply


@pytest.mark.parametrize("entries, senders, expected", [
    (("bad@example.org",), ("bad@example.org",), "bad@example.org"),
    (("bad@example.org",), ("good@example.org",), None),
    (("example.org",), ("anyone@example.org",), "example.org"),
    (("example.org",), ("anyone@mail.example.org",), None),
    ((".example.org",), ("anyone@mail.example.org",), ".example.org"),
    ((".example.org",), ("anyone@example.org",), ".example.org"),
    ((".example.org",), ("anyone@badexample.org",), None),
    (("example.org",), ("envelope@other.test", "header@example.org"), "example.org"),  # header From counts
])
def test_list_entries(entries, senders, expected):
    match = match_sender_lists([domain(sender_blocklist=entries)], senders)
    assert (match.entry if match else None) == expected
    if match:
        assert match.action == "block" and match.domain == "example.com"


def test_lists_blocklist_wins_and_strictest_domain_decides():
    both = domain("a.test", sender_allowlist=("example.org",), sender_blocklist=("bad@example.org",))
    assert match_sender_lists([both], ["bad@example.org"]).action == "block"
    assert match_sender_lists([both], ["ok@example.org"]).action == "allow"
    # Allowed only when every recipient domain allows; blocked when any blocks.
    other = domain("b.test")
    assert match_sender_lists([both, other], ["ok@example.org"]) is None
    blocker = domain("c.test", sender_blocklist=("example.org",))
    assert match_sender_lists([both, blocker], ["ok@example.org"]).domain == "c.test"


def test_normalize_senders_drops_null_and_duplicates():
    assert normalize_senders(["", None, "<>", "A@Example.ORG", "a@example.org", "no-domain"]) == ("a@example.org",)


def test_domain_policy_validates_list_entries():
    p = DomainPolicy().with_setting("sender_blocklist", "Bad@Example.org, .spam.test ,example.net")
    assert p.sender_blocklist == (".spam.test", "bad@example.org", "example.net")
    with pytest.raises(InvalidInput, match="expected user@domain"):
        DomainPolicy().with_setting("sender_allowlist", "localhost")


def test_trace_headers_fold_and_flag():
    many = tuple(SpamSymbol(f"SYMBOL_NUMBER_{i}", 0.5) for i in range(30))
    fields = spam_fields(SpamCheck("spam", 15.0, 15.0, "rspamd", many), "rspamd")
    status, flag = fields
    assert flag == "X-Spam-Flag: YES"
    lines = status.split("\r\n")
    assert len(lines) > 1 and all(len(x) <= 78 for x in lines) and all(x.startswith("\t") for x in lines[1:])
    unfolded = status.replace("\r\n", "")  # RFC 5322 §2.2.3 unfolding
    head, tests = unfolded.split("tests=")
    assert head.split() == ["X-Spam-Status:", "Yes,", "score=15.00", "required=15.00", "engine=rspamd"]
    assert [t.strip() for t in tests.split(",")] == [s.name for s in many]
    assert spam_fields(SpamCheck("ham", -1.0, 15.0, "rspamd"), "rspamd") == [
        "X-Spam-Status: No, score=-1.00 required=15.00 engine=rspamd"]
    assert spam_fields(SpamCheck(engine="rspamd", failure="timeout"), "rspamd") == [
        "X-Spam-Status: Unscanned, reason=timeout engine=rspamd"]
    assert spam_fields(SpamCheck(), None) == []
    assert virus_fields(CLEAN, "clamav", "mx.test") == ["X-Virus-Scanned: clamav at mx.test", "X-Virus-Status: Clean"]
    assert virus_fields(SLOW_VIRUS, "clamav", "mx.test")[1] == "X-Virus-Status: Unscanned (timeout)"
    assert virus_fields(VirusCheck(), None, "mx.test") == []


def test_webhook_json_shape():
    scan = ScanResults(spam_check=SPAM, virus_check=INFECTED)
    assert scan.spam == {"verdict": "spam", "score": 15.0, "required": 15.0, "engine": "rspamd",
                         "symbols": [{"name": "GTUBE", "score": 0.0, "options": []}]}
    assert scan.virus == {"verdict": "infected", "engine": "clamav", "signatures": ["Eicar-Test-Signature"]}
    assert ScanResults().spam["verdict"] == "unscanned" and ScanResults().virus["verdict"] == "unscanned"


@pytest.mark.parametrize("url, expected", [
    ("rspamd://127.0.0.1:11333", ("rspamd", "127.0.0.1", 11333, None, 10.0)),
    ("rspamd://scanner", ("rspamd", "scanner", 11333, None, 10.0)),
    ("spamd://[::1]:783?timeout=2.5", ("spamd", "::1", 783, None, 2.5)),
    ("clamd:///run/clamav/clamd.ctl", ("clamd", None, None, "/run/clamav/clamd.ctl", 10.0)),
])
def test_scanner_urls(url, expected):
    addr = parse_scanner_url(url, ("rspamd", "spamd", "clamd"))
    assert (addr.scheme, addr.host, addr.port, str(addr.socket_path) if addr.socket_path else None,
            addr.timeout_s) == expected


@pytest.mark.parametrize("url", ["http://127.0.0.1:11333", "rspamd://", "rspamd://h:port", "rspamd://h?timeout=0",
                                 "rspamd://h?timeout=abc"])
def test_bad_spam_urls(url):
    with pytest.raises(InvalidScannerUrl):
        spam_engine_from_url(url)


def test_clamd_url_stream_max():
    assert virus_engine_from_url("clamd://h?stream_max=50M").stream_max == 50 * 1024 * 1024
    assert virus_engine_from_url("clamd://h").stream_max == 25 * 1024 * 1024
    with pytest.raises(InvalidScannerUrl):
        virus_engine_from_url("clamd://h?stream_max=lots")
    with pytest.raises(InvalidScannerUrl):
        virus_engine_from_url("rspamd://h")


def test_auth_verdicts_become_rspamd_http_headers():
    auth = AuthResults(spf=SpfResult("softfail", "example.org"),
                       dkim=(DkimResult("pass", "example.org", "s1"), DkimResult("permerror", "other.test", "x")),
                       dmarc=DmarcResult("fail", "example.org", "reject"))
    headers = {k: json.loads(v) for k, v in auth_request_headers(auth)}
    assert headers == {"SPF": {"result": "softfail"},
                       "DKIM": {"results": [{"result": "pass", "domain": "example.org"},
                                            {"result": "permfail", "domain": "other.test"}]},
                       "DMARC": {"result": "reject"}}
    none = {k: json.loads(v) for k, v in auth_request_headers(AuthResults())}
    assert none == {"SPF": {"result": "na"}, "DKIM": {"result": "na"}, "DMARC": {"result": "na"}}


def test_parse_checkv2():
    doc = {"action": "add header", "score": 7.123, "required_score": 15.0,
           "symbols": {"A": {"name": "A", "score": 5.0, "options": ["x"]}, "B": {"name": "B", "score": -1.0}}}
    check = parse_checkv2(doc)
    assert (check.verdict, check.score, check.required) == ("spam", 7.12, 15.0)
    assert check.symbols == (SpamSymbol("A", 5.0, ("x",)), SpamSymbol("B", -1.0, ()))
    assert parse_checkv2({"action": "greylist", "score": 4.5}).verdict == "ham"
    with pytest.raises(KeyError):
        parse_checkv2({"score": 1})
    with pytest.raises(ValueError):
        parse_checkv2({"error": "bad request"})


@pytest.mark.parametrize("reply, expected", [
    (b"stream: OK\0", VirusCheck("clean", "clamav")),
    (b"stream: Win.Test.EICAR_HDB-1 FOUND\0", VirusCheck("infected", "clamav", ("Win.Test.EICAR_HDB-1",))),
])
def test_clamd_replies(reply, expected):
    assert parse_reply(reply) == expected


def test_clamd_error_replies():
    with pytest.raises(MessageTooLarge):
        parse_reply(b"INSTREAM size limit exceeded. ERROR\0")
    with pytest.raises(ScanProtocolError):
        parse_reply(b"Can't allocate memory ERROR\0")
    with pytest.raises(ScanProtocolError):
        parse_reply(b"garbage\0")
