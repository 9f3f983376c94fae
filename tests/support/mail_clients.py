"""Command-line mail clients from Debian driven against a test IMAP server: mbsync (isync),
fetchmail and mutt (in tmux, as a person would use it). Each helper writes its own config in
``workdir`` and runs the client with a bounded time."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

TIMEOUT_S = 60


def mbsync(workdir: Path, port: int, password: str, cert: Path) -> subprocess.CompletedProcess:
    """Sync every folder (INBOX and Sent) to a Maildir under ``workdir/mail`` (pull only)."""
    maildir = workdir / "mail"
    maildir.mkdir(parents=True, exist_ok=True)
    rc = workdir / "mbsyncrc"
    rc.write_text(f"""IMAPAccount mk
Host 127.0.0.1
Port {port}
User bob
Pass {password}
SSLType IMAPS
CertificateFile {cert}
AuthMechs LOGIN

IMAPStore mk-remote
Account mk

MaildirStore mk-local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel mk
Far :mk-remote:
Near :mk-local:
Patterns *
Create Near
Sync Pull
SyncState *
""")
    return subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "HOME": str(workdir)})


def maildir_messages(folder: Path) -> list[bytes]:
    """The messages of a Maildir folder (new/ and cur/), in mbsync's UID order."""
    files = sorted((folder / "cur").glob("*")) + sorted((folder / "new").glob("*"))

    def uid(p: Path) -> int:
        part = [x for x in p.name.split(",") if x.startswith("U=")]
        return int(part[0][2:].split(":")[0]) if part else 0

    return [p.read_bytes() for p in sorted(files, key=uid)]


def fetchmail(workdir: Path, port: int, password: str, cert: Path) -> tuple[subprocess.CompletedProcess, list[bytes]]:
    """Download INBOX with fetchmail (``keep``), each message through an MDA into its own file."""
    out = workdir / "fetched"
    out.mkdir(parents=True, exist_ok=True)
    rc = workdir / "fetchmailrc"
    rc.write_text(f"""set no bouncemail
poll 127.0.0.1 service {port} protocol IMAP auth password
  user "bob" password "{password}" is "bob" here
  ssl sslcertck sslcertfile "{cert}" sslcommonname "mx.mailkite.test"
  keep fetchall no rewrite
  mda "/bin/sh -c 'cat > $(mktemp {out}/XXXXXXXX.eml)'"
""")
    rc.chmod(0o600)
    proc = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-v"], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env={**os.environ, "HOME": str(workdir)})
    return proc, [p.read_bytes() for p in sorted(out.glob("*.eml"))]


class MuttSession:
    """mutt in a detached tmux session (a real terminal); ``screen()`` reads what a person sees."""

    def __init__(self, workdir: Path, port: int, password: str, cert: Path) -> None:
        self.workdir = workdir
        self.name = f"mutt-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.out = workdir / "piped.eml"
        certs = workdir / "mutt_certificates"
        certs.write_bytes(cert.read_bytes())
        rc = workdir / "muttrc"
        rc.write_text(f"""set folder="imaps://bob@127.0.0.1:{port}/"
set spoolfile="+INBOX"
set imap_user="bob"
set imap_pass="{password}"
set certificate_file="{certs}"
set ssl_force_tls=yes
set imap_check_subscribed=no
set mail_check=60
set sort=date
set header_cache=""
set message_cachedir=""
set record=""
set wait_key=no
set pipe_decode=no
""")
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "40",
                        f"HOME={workdir} TERM=xterm mutt -n -F {rc}"], check=True, timeout=10)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                              timeout=10).stdout

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise TimeoutError(f"{text!r} never appeared; screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True, timeout=10)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, timeout=10)
