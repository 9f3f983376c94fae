"""SPF (RFC 7208) through pyspf and our resolver, against a real DNS server serving test zones."""

from __future__ import annotations

import pytest

from tests.support.auth_run import authenticate
from tests.support.dns_server import DnsTestServer, Zone

MESSAGE = b"From: a@example.org\r\nSubject: spf\r\n\r\nbody\r\n"


def _zone() -> Zone:
    z = Zone()
    z.add("pass.spf.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    z.add("fail.spf.test", "TXT", "v=spf1 ip4:192.0.2.1 -all exp=why.fail.spf.test")
    z.add("why.fail.spf.test", "TXT", "%{i} is not a server of %{d}")
    z.add("soft.spf.test", "TXT", "v=spf1 ip4:192.0.2.1 ~all")
    z.add("neutral.spf.test", "TXT", "v=spf1 ?all")
    z.add("norecord.spf.test", "TXT", "some other text record")
    z.add("include.spf.test", "TXT", "v=spf1 include:_spf.provider.test -all")
    z.add("_spf.provider.test", "TXT", "v=spf1 ip4:127.0.0.0/8 ip6:2001:db8::/32 -all")
    z.add("redirect.spf.test", "TXT", "v=spf1 redirect=_spf.provider.test")
    z.add("mx.spf.test", "TXT", "v=spf1 mx -all")
    z.add("mx.spf.test", "MX", "10 smtp.mx.spf.test")
    z.add("smtp.mx.spf.test", "A", "127.0.0.1")
    z.add("v6host.spf.test", "TXT", "v=spf1 a:host6.spf.test -all")
    z.add("host6.spf.test", "AAAA", "2001:db8::25")
    z.add("cname.spf.test", "CNAME", "pass.spf.test")
    # RFC 7208 §4.6.4: an eleventh DNS-querying term is a permerror.
    z.add("limit.spf.test", "TXT", "v=spf1 include:l1.spf.test -all")
    for i in range(1, 12):
        z.add(f"l{i}.spf.test", "TXT", f"v=spf1 include:l{i + 1}.spf.test -all" if i < 11 else "v=spf1 -all")
    z.add("ten.spf.test", "TXT", "v=spf1 " + " ".join(f"a:h{i}.spf.test" for i in range(9)) + " a:smtp.mx.spf.test -all")
    for i in range(9):
        z.add(f"h{i}.spf.test", "A", "192.0.2.99")
    # ... and more than two lookups answering nothing (void lookups) are a permerror too.
    z.add("void.spf.test", "TXT", "v=spf1 a:n1.spf.test a:n2.spf.test a:n3.spf.test ip4:127.0.0.1 -all")
    z.add("twovoid.spf.test", "TXT", "v=spf1 a:n1.spf.test a:n2.spf.test ip4:127.0.0.1 -all")
    z.add("syntax.spf.test", "TXT", "v=spf1 ip4:127.0.0.1 bogus:thing -all")
    z.add("double.spf.test", "TXT", "v=spf1 -all")
    z.add("double.spf.test", "TXT", "v=spf1 +all")
    z.add("servfail.spf.test", "TXT", "v=spf1 include:dead.spf.test -all")
    z.servfail.add("dead.spf.test")
    z.add("helo.spf.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    return z


@pytest.fixture(scope="module")
def dns():
    with DnsTestServer(_zone()) as server:
        yield server


def _spf(dns, mail_from, client_ip="127.0.0.1", helo="client.test"):
    return authenticate(MESSAGE, dns.nameserver, mail_from=mail_from, client_ip=client_ip, helo=helo).spf


@pytest.mark.parametrize("domain, client_ip, expected", [
    ("pass.spf.test", "127.0.0.1", "pass"),
    ("fail.spf.test", "127.0.0.1", "fail"),
    ("soft.spf.test", "127.0.0.1", "softfail"),
    ("neutral.spf.test", "127.0.0.1", "neutral"),
    ("norecord.spf.test", "127.0.0.1", "none"),
    ("nxdomain.spf.test", "127.0.0.1", "none"),
    ("include.spf.test", "127.0.0.1", "pass"),
    ("include.spf.test", "192.0.2.7", "fail"),
    ("redirect.spf.test", "127.0.0.1", "pass"),
    ("redirect.spf.test", "192.0.2.7", "fail"),
    ("mx.spf.test", "127.0.0.1", "pass"),
    ("cname.spf.test", "127.0.0.1", "pass"),
    ("include.spf.test", "2001:db8::1", "pass"),  # IPv6 client, ip6: in an included record
    ("v6host.spf.test", "2001:db8::25", "pass"),  # "a" looks up AAAA for an IPv6 client
    ("v6host.spf.test", "2001:db8::26", "fail"),
    ("pass.spf.test", "::ffff:127.0.0.1", "pass"),  # IPv4-mapped IPv6 is checked as IPv4
    ("limit.spf.test", "127.0.0.1", "permerror"),  # 11 includes
    ("ten.spf.test", "127.0.0.1", "pass"),  # exactly 10 lookups is allowed
    ("void.spf.test", "127.0.0.1", "permerror"),  # 3 void lookups
    ("twovoid.spf.test", "127.0.0.1", "pass"),  # 2 are allowed
    ("syntax.spf.test", "127.0.0.1", "permerror"),
    ("double.spf.test", "127.0.0.1", "permerror"),  # two v=spf1 records
    ("servfail.spf.test", "127.0.0.1", "temperror"),
])
def test_spf_results(dns, domain, client_ip, expected):
    result = _spf(dns, f"sender@{domain}", client_ip)
    assert result.result == expected, result.explanation
    assert (result.domain, result.identity) == (domain, "mailfrom")


def test_fail_carries_the_domains_explanation(dns):
    result = _spf(dns, "sender@fail.spf.test")
    assert result.explanation == "127.0.0.1 is not a server of fail.spf.test"


def test_lookup_limit_is_explained(dns):
    assert "Too many DNS lookups" in _spf(dns, "x@limit.spf.test").explanation


def test_void_lookup_limit_is_explained(dns):
    assert "Void lookup limit" in _spf(dns, "x@void.spf.test").explanation


def test_null_sender_checks_the_helo_identity(dns):
    result = _spf(dns, "", helo="helo.spf.test")
    assert (result.result, result.identity, result.domain, result.sender) == \
        ("pass", "helo", "helo.spf.test", "postmaster@helo.spf.test")


def test_null_sender_with_an_address_literal_helo_is_none(dns):
    result = _spf(dns, "", helo="[127.0.0.1]")
    assert (result.result, result.identity) == ("none", "helo")


def test_results_are_cached_across_messages(dns):
    """One resolver per process: a second check of the same domain asks the DNS server nothing."""
    import asyncio

    from inbound.auth.checker import AuthConfig, Authenticator
    from inbound.dns import Resolver
    from tests.support.auth_run import envelope

    async def twice():
        host, _, port = dns.nameserver.rpartition(":")
        auth = Authenticator(Resolver([(host, int(port))]), AuthConfig("mx.test"))
        try:
            first = await auth(envelope("a@redirect.spf.test"), MESSAGE)
            asked = len(dns.queries)
            second = await auth(envelope("a@redirect.spf.test"), MESSAGE)
            return first, second, len(dns.queries) - asked
        finally:
            auth.close()

    first, second, new_queries = asyncio.run(twice())
    assert first.spf.result == second.spf.result == "pass"
    assert new_queries == 0


def test_a_system_without_resolver_configuration_is_a_clear_error(tmp_path):
    """No MAILKITE_DNS_NAMESERVERS and no usable /etc/resolv.conf (a bare container): one error that
    says what to set (the roles and ``serve`` turn it into a one-line configuration error, via
    mailkite.components.resolver); a resolv.conf that names a server is read as before."""
    from inbound.dns import DnsNotConfigured, Resolver

    empty = tmp_path / "resolv.conf"
    empty.write_text("# no nameserver lines\n")
    for path in (tmp_path / "missing.conf", empty):
        with pytest.raises(DnsNotConfigured, match="set MAILKITE_DNS_NAMESERVERS"):
            Resolver(system_config=str(path))
    named = tmp_path / "named.conf"
    named.write_text("nameserver 127.0.0.53\n")
    Resolver(system_config=str(named))
