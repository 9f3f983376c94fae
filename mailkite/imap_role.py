"""The ``imap`` role: the IMAP window on ``IMAP_LISTEN`` (implicit TLS) until SIGTERM/SIGINT.

Kept apart from :mod:`mailkite.roles` (which imports the web, SMTP and delivery stacks) so the IMAP
process stays small: idle IMAP connections are many and long-lived. Like the web role it does not
migrate the database (``serve``, ``mailkite db upgrade`` and the MX role do), which also keeps
Alembic out of the process.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal

from imapwindow.context import ImapLimits
from imapwindow.notify import Publisher
from imapwindow.server import ImapServer, build_context
from mailkite import components
from mailkite.config import ConfigError, HostPort, Settings

log = logging.getLogger("mailkite.roles")

M_ARENA_MAX = -8  # glibc mallopt parameters
M_MMAP_THRESHOLD = -3


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _keep_memory_small() -> "callable | None":
    """glibc gives every worker thread its own malloc arena, and FETCH batches are rendered in
    worker threads: after one 10,000-message sync tens of MB stay resident. Two arenas, and a trim
    after each large response, keep the process small. A fixed mmap threshold makes big blocks (each
    Argon2 check takes 19 MiB) go back to the system when freed, instead of glibc raising the
    threshold and keeping them in the heap. Returns the trim function (None off glibc)."""
    libc = _glibc()
    if libc is None:
        return None
    libc.mallopt(M_ARENA_MAX, 2)
    libc.mallopt(M_MMAP_THRESHOLD, 1024 * 1024)
    return lambda: libc.malloc_trim(0)


def run_imap(settings: Settings) -> None:
    """Run the IMAP window until a signal; raises :class:`ConfigError` without ``REDIS_URL``."""
    if not settings.redis_url:
        raise ConfigError("MAILKITE_REDIS_URL is not set (only 'mailkite serve' embeds a Redis)")
    asyncio.run(_imap_main(settings, settings.redis_url))


async def _imap_main(settings: Settings, redis_url: str) -> None:
    trim = _keep_memory_small()
    db = components.database(settings, migrate=False)  # serve / db upgrade / the MX migrate
    publisher = Publisher(redis_url)
    ctx = build_context(db, components.blob_store(settings), hostname=settings.hostname, publisher=publisher,
                        limits=ImapLimits(max_connections_per_account=settings.imap_max_connections_per_account),
                        redis_url=redis_url)
    ctx.release_memory = trim
    server = ImapServer(ctx, components.tls_context(settings, generate_in_child=True), redis_url)
    listen = HostPort.parse(settings.imap_listen)
    await server.start(listen.host, listen.port)
    log.info("imap.listening", extra={"kv": {"listen": str(listen)}})
    if trim is not None:
        trim()  # what start-up (imports, the first queries) freed goes back to the system: ~1 MB
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("imap.stopping", extra={"kv": {"connections": len(server.connections)}})
    await server.stop()
    publisher.close()
    db.dispose()
