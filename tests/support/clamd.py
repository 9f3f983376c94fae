"""A real clamd for tests: Debian's ``clamav-daemon`` on a free loopback port and a Unix socket,
with ``tests/scanners/clamav/clamd.conf`` and a signature database generated here (no freshclam, no
internet): an ``.ndb`` body signature for the EICAR test string (matching it anywhere, as ClamAV's
own ``Eicar-Test-Signature`` does) and an ``.hdb`` hash signature (MD5 and size) for the file
:func:`flagged_attachment`.

The EICAR test string is never written in a source file (antivirus on developer machines would
flag the file): :func:`eicar` builds it from two halves at run time.
"""

from __future__ import annotations

import hashlib
import shutil

from tests.support.scanproc import SCANNERS, ScannerDaemon
from tests.support.servers import free_port

EICAR_SIGNATURE = "Eicar-Test-Signature"
ATTACHMENT_SIGNATURE = "Mailkite.Test.Attachment"


def eicar() -> bytes:
    """The 68-byte EICAR anti-virus test file, assembled at run time."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def flagged_attachment() -> bytes:
    """A small PDF-looking file that the test database knows by its hash (and nothing else does)."""
    return b"%PDF-1.4\n% mailkite test attachment: flagged by hash in the test signature database\n%%EOF\n"


class ClamdProcess(ScannerDaemon):
    """clamd on ``127.0.0.1:port`` and ``socket_path``; ``stream_max`` is its StreamMaxLength."""

    user = "clamav"
    start_timeout_s = 60.0

    def __init__(self, stream_max: str = "4M") -> None:
        super().__init__(free_port())
        self.stream_max = stream_max
        self.socket_path = self.state / "clamd.sock"

    @property
    def url(self) -> str:
        return f"clamd://127.0.0.1:{self.port}?timeout=5&stream_max={self.stream_max}"

    @property
    def socket_url(self) -> str:
        return f"clamd://{self.socket_path}?timeout=5&stream_max={self.stream_max}"

    def prepare(self) -> None:
        self.render(SCANNERS / "clamav" / "clamd.conf", self.state / "clamd.conf", PORT=str(self.port),
                    STATE=str(self.state), STREAM_MAX=self.stream_max)
        db = self.state / "db"
        db.mkdir(exist_ok=True)
        (self.state / "tmp").mkdir(exist_ok=True)
        # .ndb: name:target type (0 = any):offset (* = anywhere):hex body ("Extended signatures").
        (db / "mailkite-test.ndb").write_text(f"{EICAR_SIGNATURE}:0:*:{eicar().hex()}\n")
        # .hdb: MD5:size:name of a whole file ("Hash-based signatures").
        data = flagged_attachment()
        (db / "mailkite-test.hdb").write_text(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{ATTACHMENT_SIGNATURE}\n")

    def command(self) -> list[str]:
        return [shutil.which("clamd") or "/usr/sbin/clamd", "-c", str(self.state / "clamd.conf")]
