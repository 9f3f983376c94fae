"""What the scanner daemons for tests (rspamd, clamd) share: a private state directory, the
configuration files shipped under ``tests/scanners/`` rendered into it, an unprivileged process
(the package's own user when the tests run as root), and stop / pause / resume for outage tests."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.servers import wait_for_port

SCANNERS = Path(__file__).resolve().parents[1] / "scanners"


class ScannerDaemon:
    """Base class: subclasses set ``user`` (the Debian package's system user), implement
    :meth:`command` and :meth:`prepare`, and listen on ``self.port``."""

    user = "nobody"
    start_timeout_s = 60.0

    def __init__(self, port: int) -> None:
        self.port = port
        # Not under pytest's tmp_path: its parents are private to us, and the daemon may run as
        # another (unprivileged) user.
        self.state = Path(tempfile.mkdtemp(prefix=f"mk-{type(self).__name__.lower()}-"))
        self.proc: subprocess.Popen | None = None
        self._log = None

    # Subclass hooks ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration and data into ``self.state``."""

    # Helpers ----------------------------------------------------------------------------------

    def render(self, template: Path, target: Path, **values: str) -> None:
        """Copy ``template`` to ``target`` replacing ``@KEY@`` with each value."""
        text = template.read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            entry = pwd.getpwnam("nobody")
        for path in [self.state, *self.state.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    # Lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.prepare()
        self.state.chmod(0o755)
        self._log = (self.state / "stdout.log").open("ab")
        self.proc = subprocess.Popen(self.command(), cwd=self.state, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, **self._run_as())
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command()[0]} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                wait_for_port(self.port, timeout=0.5)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.command()[0]} not listening after {self.start_timeout_s}s:\n"
                                       f"{self.log_tail()}") from None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGCONT)  # in case it was paused
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if self._log:
            self._log.close()

    def pause(self) -> None:
        """SIGSTOP the daemon: connections still open (the kernel accepts them) but nothing answers,
        exactly like an overloaded scanner."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.state, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        text = ""
        for path in sorted(self.state.glob("*.log")):
            text += f"--- {path.name}\n" + path.read_text(errors="replace")[-chars:]
        return text
