"""Over-limit and hostile input on the IMAP window: each case gets a clear tagged BAD/NO or a BYE,
never a traceback, and the server keeps serving (RFC 3501 §7.1, RFC 7888 §4, RFC 5530 codes)."""

from __future__ import annotations

import socket
import time

import pytest

from imapwindow.context import ImapLimits
from store.app_passwords import revoke_app_password
from store.blobs import LocalBlobStore
from store.db import Database
from store.migrate import upgrade
from tests.support.imap import PLAIN, ImapHarness, Transcript, client_context, sample, unique_domain

LIMITS = ImapLimits(max_pipelined=8, max_connections_per_account=3, auth_max_failures=3, auth_window_s=300,
                    auth_failure_delay_s=0.01, autologout_s=2.0, preauth_timeout_s=2.0, idle_timeout_s=2.0,
                    safety_refresh_s=0.5)


@pytest.fixture(scope="module")
def limited(tmp_path_factory, redis_server):
    tmp = tmp_path_factory.mktemp("imap-limits")
    db = Database(f"sqlite:///{tmp / 'mailkite.db'}")
    upgrade(db)
    with ImapHarness(db, LocalBlobStore(tmp / "blobs"), redis_server.url, tmp, limits=LIMITS) as h:
        h.domain_name = unique_domain("lim")
        h.domain(h.domain_name)
        h.deliver(sample(PLAIN, h.domain_name), [f"bob@{h.domain_name}"])
        yield h
    db.dispose()


def _conn(h) -> Transcript:
    return Transcript(h.port, h.cert)


def test_100k_command_line_gets_bad_and_bye(limited):
    t = _conn(limited)
    t.send_raw(b"a1 LOGIN " + b"x" * 100_000 + b" y\r\n")
    out = t.read_all()
    assert out == (b"a1 BAD [TOOBIG] command line too long\r\n"
                   b"* BYE [TOOBIG] command line longer than 65536 bytes\r\n")
    t2 = _conn(limited)  # the server is still there
    assert t2.cmd(b"b NOOP") == b"b OK NOOP completed\r\n"


def test_preauth_literal_bombs(limited):
    t = _conn(limited)
    # A synchronising literal over the pre-login limit is refused before any data is sent.
    t.send_raw(b"a LOGIN {10000000}\r\n")
    assert t.read_until_tag(b"a") == b"a BAD [TOOBIG] literal of 10000000 bytes is over the limit of 8192 bytes\r\n"
    assert t.cmd(b"b NOOP") == b"b OK NOOP completed\r\n"
    # A non-synchronising one cannot be refused without reading it: BAD, then BYE (RFC 7888 §4).
    t.send_raw(b"c LOGIN {10000000+}\r\n" + b"x" * 1000)
    assert t.read_all() == (b"c BAD [TOOBIG] literal of 10000000 bytes is over the limit of 8192 bytes\r\n"
                            b"* BYE [TOOBIG] too much data\r\n")


def test_literal_within_limit_is_accepted_after_login(limited):
    t = _conn(limited)
    pw = limited.password(limited.domain_name)
    t.send_raw(b"a LOGIN {3}\r\n")
    assert t.read_line() == b"+ Ready for literal data\r\n"
    t.send_raw(b"bob {%d+}\r\n" % len(pw) + pw.encode() + b"\r\n")
    assert t.read_until_tag(b"a").startswith(b"a OK [CAPABILITY")
    t.cmd(b"s SELECT INBOX")
    big = b"z" * 20_000  # over the pre-login limit, under the post-login one
    assert t.cmd(b"b SEARCH BODY {20000+}\r\n" + big) == b"* SEARCH\r\nb OK SEARCH completed\r\n"


def test_pipelined_commands_beyond_the_read_ahead_are_all_answered(limited):
    """Past ``max_pipelined`` commands the server stops reading (TCP flow control) rather than
    refusing: mbsync pipelines one FETCH per message. Every command gets its answer, in order."""
    t = _conn(limited)
    t.login(limited.password(limited.domain_name))
    t.cmd(b"s SELECT INBOX")
    count = LIMITS.max_pipelined * 25
    t.send_raw(b"".join(b"p%d UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])\r\n" % i for i in range(count)))
    for i in range(count):
        assert t.read_until_tag(b"p%d" % i).endswith(b"p%d OK UID FETCH completed\r\n" % i)
    assert t.cmd(b"z NOOP") == b"z OK NOOP completed\r\n"


def test_commands_and_idle_done_arriving_a_byte_at_a_time(limited):
    """Each byte its own TLS record: the connection frames commands from whatever arrives, and a
    client in IDLE (no task behind it) is answered when its DONE is complete."""
    t = _conn(limited)
    t.login(limited.password(limited.domain_name))
    for byte in b"s SELECT {5}\r\n":
        t.send_raw(bytes([byte]))
    assert t.read_line() == b"+ Ready for literal data\r\n"
    for byte in b"INBOX\r\n":
        t.send_raw(bytes([byte]))
    assert t.read_until_tag(b"s").endswith(b"s OK [READ-WRITE] SELECT completed\r\n")
    t.send_raw(b"i IDLE\r\n")
    assert t.read_line() == b"+ idling\r\n"
    for byte in b"DO":
        t.send_raw(bytes([byte]))
    time.sleep(0.2)
    for byte in b"NE\r\nn NOOP\r\n":
        t.send_raw(bytes([byte]))
    assert t.read_until_tag(b"i") == b"i OK IDLE terminated\r\n"
    assert t.read_until_tag(b"n") == b"n OK NOOP completed\r\n"
    t.close()


def test_connections_per_account(limited):
    pw = limited.password(limited.domain_name)
    conns = [_conn(limited) for _ in range(4)]
    try:
        for t in conns[:3]:
            assert t.login(pw).startswith(b"L1 OK")
        assert conns[3].login(pw) == b"L1 NO [LIMIT] too many connections for this account (at most 3)\r\n"
        conns[0].cmd(b"x LOGOUT")
        conns[0].close()
        deadline = time.monotonic() + 5
        while conns[3].login(pw).startswith(b"L1 NO") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conns[3].cmd(b"y NOOP") == b"y OK NOOP completed\r\n"
    finally:
        for t in conns:
            t.close()


def test_revoked_password_ends_open_sessions(limited):
    from store.app_passwords import list_app_passwords

    pw = limited.password(limited.domain_name, label="to revoke")
    pid = [p.id for p in list_app_passwords(limited.db) if p.label == "to revoke"][-1]
    t = _conn(limited)
    idle = _conn(limited)
    try:
        t.login(pw)
        t.cmd(b"a SELECT INBOX")
        idle.login(pw)
        idle.cmd(b"b SELECT INBOX")
        idle.send_raw(b"c IDLE\r\n")
        assert idle.read_line() == b"+ idling\r\n"
        revoke_app_password(limited.db, pid)
        t.send_raw(b"d NOOP\r\n")
        assert t.read_all() == b"* BYE this app-password has been revoked\r\n"
        # The CLI's revocation event reaches the IDLE session at once (no command needed).
        from imapwindow.notify import publish_once

        assert publish_once(limited.redis_url, {"t": "revoked", "id": pid})
        assert idle.read_all() == b"* BYE this app-password has been revoked\r\n"
        t2 = _conn(limited)
        assert t2.login(pw) == b"L1 NO [AUTHENTICATIONFAILED] This app-password has been revoked\r\n"
        # Without an event (Redis down, or a CLI without REDIS_URL) the safety refresh ends IDLE too.
        pw2 = limited.password(limited.domain_name, label="quiet revoke")
        pid2 = [p.id for p in list_app_passwords(limited.db) if p.label == "quiet revoke"][-1]
        quiet = _conn(limited)
        quiet.login(pw2)
        quiet.cmd(b"e SELECT INBOX")
        quiet.send_raw(b"f IDLE\r\n")
        assert quiet.read_line() == b"+ idling\r\n"
        revoke_app_password(limited.db, pid2)
        assert quiet.read_all() == b"* BYE this app-password has been revoked\r\n"
    finally:
        t.close()
        idle.close()


def test_failed_logins_are_throttled_per_address(limited):
    pw = limited.password(limited.domain_name)
    t = _conn(limited)
    for i in range(LIMITS.auth_max_failures):
        assert t.cmd(b"f%d LOGIN x mk_imap_wrong" % i).startswith(b"f%d NO [AUTHENTICATIONFAILED]" % i)
    got = t.cmd(b"g LOGIN x " + pw.encode())
    assert got.startswith(b"g NO [UNAVAILABLE] too many failed logins from your address; try again in ")
    limited.call(limited.ctx.authenticator.throttle.forget("127.0.0.1"))  # let the other tests log in again
    assert t.cmd(b"h LOGIN x " + pw.encode()).startswith(b"h OK")


def test_autologout_and_idle_timeout(limited):
    t = _conn(limited)
    assert t.read_all() == b"* BYE Autologout: idle for too long\r\n"  # pre-auth timeout
    pw = limited.password(limited.domain_name)
    t2 = _conn(limited)
    t2.login(pw)
    t2.cmd(b"a SELECT INBOX")
    t2.send_raw(b"b IDLE\r\n")
    assert t2.read_line() == b"+ idling\r\n"
    assert t2.read_all() == b"* BYE IDLE timed out after 30 minutes; please reconnect (RFC 2177)\r\n"


def test_tls_is_required(limited):
    s = socket.create_connection(("127.0.0.1", limited.port), timeout=5)
    s.sendall(b"a CAPABILITY\r\n")  # plaintext on the TLS port: the handshake fails, no IMAP answer
    try:
        data = s.recv(1024)
    except (ConnectionResetError, socket.timeout):
        data = b""
    assert b"CAPABILITY" not in data
    s.close()
    ctx = client_context(limited.cert)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", limited.port), timeout=5)) as tls:
        assert tls.recv(1024).startswith(b"* OK [CAPABILITY IMAP4rev1")


def test_failed_logins_are_counted_across_imap_processes_through_redis(tmp_path, redis_server, redis_url):
    """Two IMAP servers sharing one Redis, as ``mailkite imap`` processes behind one name do: the
    failures made at one count at the other, so an address cannot multiply its guesses by the
    number of processes. With Redis gone, each server falls back to its own count."""
    db = Database(f"sqlite:///{tmp_path / 'mailkite.db'}")
    upgrade(db)
    blobs = LocalBlobStore(tmp_path / "blobs")
    with ImapHarness(db, blobs, redis_url, tmp_path / "a", limits=LIMITS, shared_throttle=True) as a, \
            ImapHarness(db, blobs, redis_url, tmp_path / "b", limits=LIMITS, shared_throttle=True) as b:
        a.domain(domain := unique_domain("shared"))
        pw = a.password(domain)
        at_a, at_b = _conn(a), _conn(b)
        for i in range(LIMITS.auth_max_failures - 1):
            assert at_a.cmd(b"f%d LOGIN x mk_imap_wrong" % i).startswith(b"f%d NO [AUTHENTICATIONFAILED]" % i)
        assert at_b.cmd(b"g LOGIN x mk_imap_wrong").startswith(b"g NO [AUTHENTICATIONFAILED]")
        for t in (at_a, at_b):  # the third failure was made at b: both now refuse, even the right password
            assert t.cmd(b"h LOGIN x " + pw.encode()).startswith(
                b"h NO [UNAVAILABLE] too many failed logins from your address; try again in ")
        a.call(a.ctx.authenticator.throttle.forget("127.0.0.1"))
        b.call(b.ctx.authenticator.throttle.forget("127.0.0.1"))
        assert _conn(b).cmd(b"i LOGIN x " + pw.encode()).startswith(b"i OK")

        redis_server.stop()
        try:
            at_a = _conn(a)
            for i in range(LIMITS.auth_max_failures):
                assert at_a.cmd(b"j%d LOGIN x mk_imap_wrong" % i).startswith(b"j%d NO [AUTHENTICATIONFAILED]" % i)
            assert at_a.cmd(b"k LOGIN x " + pw.encode()).startswith(b"k NO [UNAVAILABLE]")
            assert _conn(b).cmd(b"l LOGIN x " + pw.encode()).startswith(b"l OK")  # b counted none of them
        finally:
            redis_server.start()
    db.dispose()
