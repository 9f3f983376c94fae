"""A running mailkite for end-to-end tests: ``mailkite serve`` (or single roles) as real processes,
configured through the environment exactly as a user would, plus the CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class MailkiteInstance:
    """Ports and configuration of one instance. ``env`` holds the ``MAILKITE_*`` settings."""

    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mx_port = free_port()
        self.web_port = free_port()
        self.imap_port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILKITE_")}
        env.update({
            "MAILKITE_DATA_DIR": str(self.data_dir),
            "MAILKITE_HOSTNAME": "mx.mailkite.test",
            "MAILKITE_MX_LISTEN": f"127.0.0.1:{self.mx_port}",
            "MAILKITE_WEB_LISTEN": f"127.0.0.1:{self.web_port}",
            "MAILKITE_IMAP_LISTEN": f"127.0.0.1:{self.imap_port}",
            "MAILKITE_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
            "MAILKITE_WORKER_PROCESSES": "1",
        })
        for key, value in (("DATABASE_URL", self.database_url), ("REDIS_URL", self.redis_url),
                           ("BLOB_URL", self.blob_url), ("S3_ENDPOINT_URL", self.s3_endpoint_url)):
            if value:
                env[f"MAILKITE_{key}"] = value
        env.update(self.extra_env)
        return env

    # CLI ---------------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``mailkite ARGS`` with this instance's configuration."""
        proc = subprocess.run([sys.executable, "-m", "mailkite", *args], env=self.env, cwd=self.data_dir.parent,
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"mailkite {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def add_domain(self, name: str, *extra: str) -> None:
        self.cli("domain", "add", name, *extra)

    def add_webhook(self, url: str, *extra: str) -> tuple[str, str]:
        """Returns (endpoint id, whsec_ secret)."""
        out = self.cli("webhook", "add", url, *extra).stdout
        return re.search(r"endpoint (ep_\w+)", out).group(1), re.search(r"(whsec_\S+)", out).group(1)

    # Processes ---------------------------------------------------------------------------------

    def start(self, *roles: str, name: str | None = None) -> subprocess.Popen:
        """Start ``mailkite ROLE…`` (e.g. ``start("serve")``, ``start("worker", "--no-relay")``)."""
        name = name or roles[0]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen([sys.executable, "-m", "mailkite", *roles], env=self.env, cwd=self.data_dir.parent,
                                stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        if roles[0] in ("serve", "mx"):
            self._wait(proc, self.mx_port, name)
        if roles[0] in ("serve", "web"):
            self._wait(proc, self.web_port, name)
        return proc

    def _wait(self, proc: subprocess.Popen, port: int, name: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"mailkite {name} exited with {proc.returncode}:\n{self.log_text(name)[-3000:]}")
            try:
                wait_for_port(port, timeout=0.5)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"mailkite {name} did not listen on {port}:\n{self.log_text(name)[-3000:]}")

    def log_text(self, name: str) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
