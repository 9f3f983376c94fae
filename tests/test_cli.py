"""The ``mailkite`` command: the DESIGN.md contract, and errors as one clear line with a non-zero exit."""

from __future__ import annotations

import pytest

from tests.support.instance import MailkiteInstance


@pytest.fixture
def cli(tmp_path, redis_url):
    return MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)


def test_domain_and_webhook_administration(cli):
    assert "added example.com (stored)" in cli.cli("domain", "add", "Example.COM.").stdout
    assert "zero-retention" in cli.cli("domain", "add", "private.example", "--zero-retention").stdout
    listing = cli.cli("domain", "list").stdout.splitlines()
    assert listing[0].split() == ["DOMAIN", "RETENTION", "VERIFIED"]
    assert [line.split()[:2] for line in listing[1:]] == [["example.com", "stored"],
                                                          ["private.example", "zero-retention"]]
    endpoint_id, secret = cli.add_webhook("https://hooks.example.net/in", "--domain", "example.com")
    assert endpoint_id.startswith("ep_") and secret.startswith("whsec_")
    hooks = cli.cli("webhook", "list").stdout
    assert endpoint_id in hooks and "example.com" in hooks and secret not in hooks  # shown once only
    rotated = cli.cli("webhook", "rotate-secret", endpoint_id).stdout
    assert "whsec_" in rotated and secret not in rotated
    out = cli.cli("domain", "set", "example.com", "dmarc_reject=on", "sender-blocklist=Spam.test").stdout
    assert "dmarc_reject = on" in out and "sender_blocklist = spam.test" in out
    assert "dmarc_reject = on" in cli.cli("domain", "show", "example.com").stdout
    assert "revision" in cli.cli("db", "upgrade").stdout


def test_secret_is_stored_encrypted(cli):
    import sqlite3

    _, secret = cli.add_webhook("http://127.0.0.1:9/hook")
    conn = sqlite3.connect(cli.data_dir / "mailkite.db")
    stored = conn.execute("SELECT secret_ciphertext FROM webhook_endpoints").fetchone()[0]
    conn.close()
    assert secret not in stored and secret[6:] not in stored


@pytest.mark.parametrize("args,message", [
    (["domain", "add", "not a domain"], "mailkite: not a valid domain name: 'not a domain'"),
    (["domain", "add", "localhost"], "mailkite: not a valid domain name: 'localhost'"),
    (["webhook", "add", "ftp://example.com/x"], "mailkite: webhook URL must be http:// or https:// with a host"),
    (["webhook", "add", "https://h.example/x", "--domain", "nope.example"], "mailkite: no domain nope.example"),
    (["events", "replay", "evt_nothing"], "mailkite: no event evt_nothing"),
    (["domain", "set", "nope.example", "dmarc_reject=on"], "mailkite: no domain nope.example"),
    (["webhook", "enable", "ep_nothing"], "mailkite: no endpoint ep_nothing"),
    (["domain", "frobnicate"], "mailkite: argument"),
    (["serve", "--bogus"], "mailkite: unrecognized arguments: --bogus"),
])
def test_errors_are_one_line_and_non_zero(cli, args, message):
    result = cli.cli(*args, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_duplicate_domain(cli):
    cli.cli("domain", "add", "example.com")
    result = cli.cli("domain", "add", "EXAMPLE.com", check=False)
    assert result.returncode == 1 and result.stderr.strip() == "mailkite: domain example.com already exists"


def test_bad_configuration_is_one_line(cli):
    cli.extra_env["MAILKITE_MAX_RECIPIENTS"] = "lots"
    result = cli.cli("domain", "list", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("mailkite: MAILKITE_MAX_RECIPIENTS:")
    cli.extra_env["MAILKITE_MAX_RECIPIENTS"] = "50"
    cli.extra_env["MAILKITE_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    result = cli.cli("domain", "list", check=False)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("mailkite: database unavailable")
