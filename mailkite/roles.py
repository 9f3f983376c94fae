"""The long-running roles: ``mx``, ``web`` and ``worker``. Each builds its components from settings,
runs until SIGTERM/SIGINT, and stops cleanly (in-flight SMTP transactions and jobs finish first)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Executor, ProcessPoolExecutor

import uvicorn

from dashboard.app import WebContext, create_app
from delivery import metrics as delivery_metrics
from delivery.queue import connect_redis, queue_depth, webhook_queue
from delivery.relay import OutboxRelay
from delivery.sender import AsyncWebhookSender, WebhookSender
from delivery.worker import WorkerContext, run_worker
from inbound.auth.checker import AuthConfig, Authenticator
from imapwindow.notify import Publisher
from inbound.mx import MXHandler, start_mx_server
from inbound.parse_pool import RespawningProcessPool
from inbound.pipeline import IngestPipeline
from inbound.prepare import warm_up
from inbound.recipients import DomainDirectory
from mailkite import components
from mailkite.config import ConfigError, HostPort, Settings
from store.domains import load_domain_map
from store.writer import BatchWriter

log = logging.getLogger("mailkite.roles")

SHUTDOWN_GRACE_S = 30.0


def _require_redis(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError("MAILKITE_REDIS_URL is not set (only 'mailkite serve' embeds a Redis)")
    return settings.redis_url


def parse_executor(settings: Settings) -> Executor:
    """Where MIME parsing runs: a process pool, one process per core, so parsing big messages never
    holds the MX event loop (or its GIL) hostage; replaced if one of its processes dies."""
    return RespawningProcessPool(lambda: ProcessPoolExecutor(
        max_workers=max(1, os.cpu_count() or 1), mp_context=multiprocessing.get_context("spawn"),
        initializer=warm_up))


def run_mx(settings: Settings) -> None:
    """The MX listener plus the outbox relay thread (woken at each commit)."""
    asyncio.run(_mx_main(settings))


async def _mx_main(settings: Settings) -> None:
    resolver = components.resolver(settings)  # first: a configuration error before anything starts
    db = components.database(settings)
    blobs = components.blob_store(settings)
    conn = connect_redis(_require_redis(settings))
    queue = webhook_queue(conn)
    stop = threading.Event()
    writer = BatchWriter(db)  # one group-commit writer for ingest and relay writes
    relay = OutboxRelay(db, queue, job_timeout=int(settings.webhook_timeout_s + 60),
                        on_relayed=lambda n: delivery_metrics.RELAYED.inc(n), writer=writer)
    relay_thread = threading.Thread(target=relay.run, args=(stop,), name="outbox-relay", daemon=True)
    relay_thread.start()
    executor = parse_executor(settings)
    # Start the pool's processes now (each warms up in its initializer), not at the first message.
    await asyncio.get_running_loop().run_in_executor(executor, warm_up)
    zr_sender = AsyncWebhookSender(settings.webhook_timeout_s)
    authenticator = Authenticator(resolver, AuthConfig(authserv_id=settings.hostname))
    scanner = components.scanner(settings)
    imap_events = Publisher(settings.redis_url)
    pipeline = IngestPipeline(db=db, blobs=blobs, links=components.link_signer(settings), zr_sender=zr_sender,
                              secret_box=components.secret_box(settings), parse_executor=executor,
                              on_committed=relay.wake.set, authenticate=authenticator, scan=scanner, writer=writer,
                              on_stored=lambda stored: imap_events.mail_stored({m.domain for m in stored}))
    handler = MXHandler(pipeline=pipeline, directory=DomainDirectory(lambda: load_domain_map(db)),
                        max_recipients=settings.max_recipients)
    listen = HostPort.parse(settings.mx_listen)
    server = await start_mx_server(handler, host=listen.host, port=listen.port, hostname=settings.hostname,
                                   max_message_bytes=settings.max_message_bytes,
                                   tls_context=components.tls_context(settings))
    log.info("mx.listening", extra={"kv": {"listen": str(listen), "blobs": blobs.describe(),
                                           "scanners": scanner.describe()}})
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("mx.stopping", extra={"kv": {"in_flight": len(handler.in_flight)}})
    server.close()
    if handler.in_flight:
        await asyncio.wait(list(handler.in_flight), timeout=SHUTDOWN_GRACE_S)
    stop.set()
    relay.wake.set()
    relay_thread.join(timeout=5)
    await zr_sender.aclose()
    pipeline.close()
    authenticator.close()
    await scanner.aclose()
    imap_events.close()
    executor.shutdown(wait=False, cancel_futures=True)
    db.dispose()


def run_web(settings: Settings) -> None:
    """The web role (uvicorn serving the Starlette app) on ``WEB_LISTEN``."""
    db = components.database(settings, migrate=False)
    depth = None
    if settings.redis_url:
        queue = webhook_queue(connect_redis(settings.redis_url))
        depth = lambda: queue_depth(queue)  # noqa: E731
    app = create_app(WebContext(db=db, blobs=components.blob_store(settings),
                                links=components.link_signer(settings), queue_depth=depth))
    listen = HostPort.parse(settings.web_listen)
    log.info("web.listening", extra={"kv": {"url": f"http://{listen}"}})
    uvicorn.Server(uvicorn.Config(app, host=listen.host, port=listen.port, log_level="warning",
                                  access_log=False, lifespan="off")).run()


def run_worker_role(settings: Settings, *, with_relay: bool = True, burst: bool = False) -> None:
    """An rq worker delivering webhooks (plus an outbox relay thread unless ``with_relay`` is False)."""
    ctx = WorkerContext(db=components.database(settings, migrate=False), blobs=components.blob_store(settings),
                        box=components.secret_box(settings), links=components.link_signer(settings),
                        sender=WebhookSender(settings.webhook_timeout_s), schedule=settings.retry_schedule,
                        timeout_s=settings.webhook_timeout_s)
    run_worker(ctx, connect_redis(_require_redis(settings)), with_relay=with_relay, burst=burst)


def run_imap(settings: Settings) -> None:
    """The IMAP window on ``IMAP_LISTEN`` (implicit TLS), with its Redis subscription for IDLE.

    Lives in :mod:`mailkite.imap_role` so the ``imap`` process imports only what it needs (its
    memory is a product figure: 1,000 IDLE connections within 100 MB)."""
    from mailkite.imap_role import run_imap as run  # noqa: PLC0415

    run(settings)
