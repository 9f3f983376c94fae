"""Builds the components every role shares from :class:`~mailkite.config.Settings`."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from mailkite.config import ConfigError, Settings
from mailkite.tls import ensure_self_signed, server_context
from store.blobs import BlobStore, open_blob_store
from store.db import Database

if TYPE_CHECKING:
    from delivery.links import LinkSigner
    from store.crypto import SecretBox
# Imported where used, so the long-lived IMAP process (many idle connections; it needs none of them)
# stays small: store.migrate (Alembic, Mako, ~10 MB) when a role migrates, store.crypto and
# delivery.links (cryptography) when a role signs or decrypts.


def database(settings: Settings, *, migrate: bool = True) -> Database:
    """The metadata database, migrated to the newest schema unless ``migrate`` is False."""
    db = Database(settings.resolved_database_url)
    if migrate:
        from store.migrate import upgrade  # noqa: PLC0415

        upgrade(db)
    return db


def embedded_redis_file(settings: Settings) -> Path:
    """Where ``serve`` records the URL of its embedded Redis while it runs: ``DATA_DIR/redis.url``."""
    return settings.data_dir / "redis.url"


def redis_url(settings: Settings) -> str | None:
    """``REDIS_URL``; else the embedded Redis of a ``serve`` running on the same ``DATA_DIR``; else None."""
    if settings.redis_url:
        return settings.redis_url
    try:
        return embedded_redis_file(settings).read_text().strip() or None
    except OSError:
        return None


def blob_store(settings: Settings) -> BlobStore:
    """The blob store named by ``BLOB_URL`` (default: ``DATA_DIR/blobs``)."""
    try:
        return open_blob_store(settings.resolved_blob_url, s3_endpoint_url=settings.s3_endpoint_url)
    except ValueError as exc:
        raise ConfigError(f"MAILKITE_BLOB_URL: {exc}") from None


def secret_box(settings: Settings) -> SecretBox:
    """The endpoint-secret cipher keyed by ``SECRET_KEY``."""
    from store.crypto import SecretBox  # noqa: PLC0415

    return SecretBox(settings.secret_key_bytes())


def link_signer(settings: Settings) -> LinkSigner:
    """Signs the time-limited attachment links of webhook bodies."""
    from delivery.links import LinkSigner  # noqa: PLC0415

    return LinkSigner(settings.secret_key_bytes(), settings.web_base_url, settings.attachment_url_ttl_s)


def tls_files(settings: Settings, *, generate_in_child: bool = False) -> tuple[Path, Path]:
    """``TLS_CERT``/``TLS_KEY`` when both are set, else the generated self-signed pair (made by a
    child process when ``generate_in_child``: see :func:`mailkite.tls.ensure_self_signed`)."""
    if settings.tls_cert and settings.tls_key:
        return settings.tls_cert, settings.tls_key
    if settings.tls_cert or settings.tls_key:
        raise ConfigError("MAILKITE_TLS_CERT and MAILKITE_TLS_KEY go together: set both or neither")
    return ensure_self_signed(settings.data_dir, settings.hostname, in_child=generate_in_child)


def tls_context(settings: Settings, *, generate_in_child: bool = False) -> ssl.SSLContext:
    """A server context with :func:`tls_files`. Raises :class:`ConfigError` when they cannot be loaded."""
    cert, key = tls_files(settings, generate_in_child=generate_in_child)
    try:
        return server_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"MAILKITE_TLS_CERT/KEY: cannot load {cert} / {key}: {exc}") from None


def resolver(settings: Settings):
    """The DNS resolver (:class:`inbound.dns.Resolver`) for ``DNS_NAMESERVERS``, or the system's
    when unset. Raises :class:`ConfigError` when that leaves no nameserver."""
    from inbound.dns import DnsNotConfigured, Resolver

    try:
        return Resolver([(ns.host, ns.port) for ns in settings.nameservers])
    except DnsNotConfigured as exc:
        raise ConfigError(str(exc)) from None


def scanner(settings: Settings):
    """The scan stage (:class:`inbound.scan.scanner.MessageScanner`) with the engines named by
    ``SPAM_URL`` and ``VIRUS_URL`` (either may be unset). Raises :class:`ConfigError` on a bad URL."""
    import logging

    from inbound.scan.engines import spam_engine_from_url, virus_engine_from_url
    from inbound.scan.errors import InvalidScannerUrl
    from inbound.scan.scanner import MessageScanner

    try:
        spam = spam_engine_from_url(settings.spam_url) if settings.spam_url else None
    except InvalidScannerUrl as exc:
        raise ConfigError(f"MAILKITE_SPAM_URL: {exc}") from None
    try:
        virus = virus_engine_from_url(settings.virus_url) if settings.virus_url else None
    except InvalidScannerUrl as exc:
        raise ConfigError(f"MAILKITE_VIRUS_URL: {exc}") from None
    stream_max = getattr(virus, "stream_max", None)
    if stream_max is not None and stream_max < settings.max_message_bytes:
        logging.getLogger("mailkite.scan").warning("scan.stream_max_below_message_limit", extra={"kv": {
            "stream_max": stream_max, "max_message_bytes": settings.max_message_bytes}})
    return MessageScanner(spam=spam, virus=virus, hostname=settings.hostname)
