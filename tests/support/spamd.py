"""A real SpamAssassin ``spamd`` for tests (Debian's ``spamd`` package) on a free loopback port,
with the rules shipped in ``tests/scanners/spamassassin/`` plus a GTUBE rule assembled at run time."""

from __future__ import annotations

import os
import re
import shutil

from tests.support.rspamd import gtube
from tests.support.scanproc import SCANNERS, ScannerDaemon
from tests.support.servers import free_port


class SpamdProcess(ScannerDaemon):
    """spamd on ``127.0.0.1:port`` (``url`` is the ``MAILKITE_SPAM_URL``), one child, no user configs."""

    user = "nobody"

    def __init__(self) -> None:
        super().__init__(free_port())

    @property
    def url(self) -> str:
        return f"spamd://127.0.0.1:{self.port}?timeout=10"

    def prepare(self) -> None:
        rules, site = self.state / "rules", self.state / "site"
        rules.mkdir(exist_ok=True)
        site.mkdir(exist_ok=True)
        text = (SCANNERS / "spamassassin" / "mailkite-test.cf").read_text()
        text += (f"\nbody MK_GTUBE /{re.escape(gtube()).replace('/', '[/]')}/\n"
                 "describe MK_GTUBE Generic Test for Unsolicited Bulk Email\nscore MK_GTUBE 1000\n")
        (rules / "mailkite-test.cf").write_text(text)
        for pre in ("init.pre", "v310.pre", "v320.pre"):
            src = f"/etc/spamassassin/{pre}"
            if os.path.exists(src):
                shutil.copy(src, site / pre)

    def command(self) -> list[str]:
        s = self.state
        return [shutil.which("spamd") or "/usr/sbin/spamd", "-C", str(s / "rules"), f"--siteconfigpath={s / 'site'}",
                "-i", "127.0.0.1", "-A", "127.0.0.1", "-p", str(self.port), "-m", "1", "--min-spare=1",
                "--max-spare=1", "-x", "-L", "--pidfile", str(s / "spamd.pid"), "-s", str(s / "spamd.log")]
