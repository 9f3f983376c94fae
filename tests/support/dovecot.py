"""Dovecot's ``imap`` binary as a reference IMAP server for comparison tests.

:func:`dovecot_fetch` writes the given messages into a fresh Maildir (one file each, in order),
runs Debian's ``/usr/lib/dovecot/imap`` (package ``dovecot-imapd``) in PREAUTH mode over
stdin/stdout with a minimal configuration (in-memory index, so nothing is cached between runs),
sends ``SELECT INBOX`` and one ``FETCH 1:* (…)``, and returns each message's FETCH items as the
exact wire bytes Dovecot sent (quoted strings and ``{n}`` literals as they were).

Dovecot refuses to run as root: when the tests run as root, the Maildir is owned by and the binary
runs as the unprivileged ``nobody`` user (no setup needed: Debian has that user). Nothing listens
on a port and no Dovecot service is started.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

IMAP_BINARY = Path("/usr/lib/dovecot/imap")
TIMEOUT_S = 300
ITEMS_PER_COMMAND = 40  # Dovecot limits a command line's length
_LOGOUT_DONE = b"\r\nc OK Logout completed"


class DovecotError(RuntimeError):
    """Dovecot could not be run, or its answer could not be read."""


def available() -> bool:
    """True when Dovecot's imap binary is installed."""
    return IMAP_BINARY.exists()


def dovecot_fetch(messages: list[bytes], items: str | list[list[str]]) -> list[dict[str, bytes]]:
    """FETCH ``items`` (e.g. ``"ENVELOPE BODYSTRUCTURE"``) for every message, via Dovecot.

    ``items``: one item list for all messages (one ``FETCH 1:*``), or a list of items per message
    (``FETCH n`` commands of at most :data:`ITEMS_PER_COMMAND` items). Returns one dict per message, in order: item name as Dovecot wrote it,
    upper-cased (e.g. ``"ENVELOPE"``, ``"BODY[HEADER.FIELDS (SUBJECT)]"``) → the value's wire bytes.
    Raises :class:`DovecotError` when Dovecot fails or the answer is incomplete.
    """
    workdir = Path(tempfile.mkdtemp(prefix="mk-dovecot-"))
    try:
        maildir = workdir / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        for i, raw in enumerate(messages, 1):
            # "<seconds>.<unique>:2," sorts as delivered, so UIDs follow the list order.
            (maildir / "cur" / f"{1_000_000_000 + i}.M{i}P1.mailkite:2,").write_bytes(raw)
        conf = workdir / "dovecot.conf"
        conf.write_text(f"mail_location = maildir:{maildir}:INDEX=MEMORY\n"
                        "log_path = /dev/stderr\nssl = no\n")
        user = _run_as()
        if user is not None:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
        if isinstance(items, str):
            fetches = b"b FETCH 1:* (" + items.encode() + b")\r\n"
        else:
            fetches = b"".join(
                b"b FETCH %d (%s)\r\n" % (i, " ".join(its[j:j + ITEMS_PER_COMMAND]).encode())
                for i, its in enumerate(items, 1) for j in range(0, len(its), ITEMS_PER_COMMAND))
        script = b"a SELECT INBOX\r\n" + fetches + b"c LOGOUT\r\n"
        env = {"USER": user.pw_name if user else pwd.getpwuid(os.getuid()).pw_name,
               "HOME": str(workdir), "PATH": "/usr/bin:/bin"}
        out, err = _converse(conf, script, env, user)
        if b"\r\nb OK" not in out or b"\r\nb NO" in out or b"\r\nb BAD" in out:
            bad_at = max(out.find(b"\r\nb NO"), out.find(b"\r\nb BAD"), 0)
            raise DovecotError(f"dovecot FETCH failed: {out[bad_at:bad_at + 300]!r} {err[-500:]!r}")
        return _fetch_items(out, len(messages))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _converse(conf: Path, script: bytes, env: dict[str, str],
              user: pwd.struct_passwd | None) -> tuple[bytes, bytes]:
    """Run the imap binary, send ``script``, read until LOGOUT is answered; (stdout, stderr).

    stdin stays open until then: Dovecot drops a session whose input ends while output is
    still being written.
    """
    try:
        proc = subprocess.Popen(
            [str(IMAP_BINARY), "-c", str(conf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env,
            **({"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}))
    except OSError as exc:
        raise DovecotError(f"dovecot imap did not run: {exc}") from exc
    errors: list[bytes] = []
    writer = threading.Thread(target=_feed, args=(proc, script), daemon=True)
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
    writer.start()
    reader.start()
    out = bytearray()
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while _LOGOUT_DONE not in out[-4096:] and time.monotonic() < deadline:
            chunk = proc.stdout.read1(1 << 20)
            if not chunk:
                break
            out += chunk
    finally:
        writer.join(5)
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
    if _LOGOUT_DONE not in out[-4096:]:
        raise DovecotError(f"dovecot imap ended early: {bytes(out[-300:])!r} {b''.join(errors)[-500:]!r}")
    return bytes(out), b"".join(errors)


def _feed(proc: subprocess.Popen, script: bytes) -> None:
    try:
        proc.stdin.write(script)
        proc.stdin.flush()
    except OSError:
        pass  # the reader reports what happened


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("nobody")


# -- reading the untagged FETCH responses (RFC 3501 §7.4.2) ------------------------------------

def _fetch_items(out: bytes, count: int) -> list[dict[str, bytes]]:
    results: list[dict[str, bytes] | None] = [None] * count
    pos = 0
    while True:
        i = out.find(b"* ", pos)
        if i < 0:
            break
        if i > 0 and out[i - 2:i] != b"\r\n":
            pos = i + 2
            continue
        j = out.find(b" ", i + 2)
        seq = out[i + 2:j]
        if not seq.isdigit() or not out.startswith(b" FETCH (", j):
            pos = out.find(b"\r\n", i) + 2
            if pos == 1:
                break
            continue
        items, pos = _parse_fetch(out, j + len(b" FETCH ("))
        results[int(seq) - 1] = {**(results[int(seq) - 1] or {}), **items}
    if any(r is None for r in results):
        missing = [i + 1 for i, r in enumerate(results) if r is None]
        raise DovecotError(f"no FETCH response for messages {missing[:10]}")
    return results  # type: ignore[return-value]


def _parse_fetch(buf: bytes, pos: int) -> tuple[dict[str, bytes], int]:
    items: dict[str, bytes] = {}
    while True:
        if buf[pos:pos + 1] == b")":
            return items, pos + 1
        if buf[pos:pos + 1] == b" ":
            pos += 1
            continue
        name_start = pos
        depth = 0
        while True:
            c = buf[pos:pos + 1]
            if c == b"[":
                depth += 1
            elif c == b"]":
                depth -= 1
            elif c == b" " and depth == 0:
                break
            pos += 1
        name = buf[name_start:pos].decode("ascii").upper()
        pos += 1
        value_start = pos
        pos = _skip_value(buf, pos)
        items[name] = buf[value_start:pos]


def _skip_value(buf: bytes, pos: int) -> int:
    c = buf[pos:pos + 1]
    if c == b"(":
        pos += 1
        while buf[pos:pos + 1] != b")":
            if buf[pos:pos + 1] == b" ":
                pos += 1
                continue
            pos = _skip_value(buf, pos)
        return pos + 1
    if c == b'"':
        pos += 1
        while buf[pos:pos + 1] != b'"':
            pos += 2 if buf[pos:pos + 1] == b"\\" else 1
        return pos + 1
    if c == b"{":
        close = buf.index(b"}", pos)
        n = int(buf[pos + 1:close])
        return close + 3 + n
    while buf[pos:pos + 1] not in (b" ", b")", b""):
        pos += 1
    return pos
