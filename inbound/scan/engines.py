"""The two scanner interfaces and the URL → adapter factory.

URLs (``MAILKITE_SPAM_URL``, ``MAILKITE_VIRUS_URL``; DESIGN.md "Configuration"):

- ``rspamd://host:port`` or ``rspamd:///path/to/normal.sock``: rspamd's normal worker (``/checkv2``);
- ``spamd://host:port`` or ``spamd:///path/to/spamd.sock``: SpamAssassin's spamd;
- ``clamd://host:port`` or ``clamd:///path/to/clamd.ctl``: ClamAV's clamd.

Query parameters: ``timeout`` (seconds, the per-scan deadline; default :data:`DEFAULT_TIMEOUT_S`),
and for clamd ``stream_max`` (bytes, ``K``/``M`` suffixes allowed: clamd's ``StreamMaxLength``,
default 25M as in clamd's own default). Example: ``clamd://127.0.0.1:3310?timeout=20&stream_max=50M``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from inbound.scan.errors import InvalidScannerUrl
from inbound.scan.results import SpamCheck, VirusCheck
from inbound.types import AuthResults, SmtpEnvelope

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_STREAM_MAX = 25 * 1024 * 1024
DEFAULT_PORTS = {"rspamd": 11333, "spamd": 783, "clamd": 3310}


class SpamEngine(Protocol):
    """A spam scanner. ``check`` returns a scanned :class:`SpamCheck` (``ham``/``spam``) or raises a
    :class:`~inbound.scan.errors.ScanError`; it never enforces the deadline itself (the caller does)."""

    name: str
    timeout_s: float
    address: "ScannerAddress"

    async def check(self, envelope: SmtpEnvelope, raw: bytes, auth: AuthResults) -> SpamCheck: ...

    async def aclose(self) -> None: ...


class VirusEngine(Protocol):
    """A virus scanner. ``scan`` returns ``clean``/``infected`` or raises a ``ScanError``."""

    name: str
    timeout_s: float
    address: "ScannerAddress"

    async def scan(self, raw: bytes) -> VirusCheck: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ScannerAddress:
    """Where a scanner listens: ``host``/``port`` for TCP, or ``socket_path`` for a Unix socket."""

    scheme: str
    host: str | None
    port: int | None
    socket_path: Path | None
    timeout_s: float
    params: dict[str, str]

    def describe(self) -> str:
        where = str(self.socket_path) if self.socket_path else f"{self.host}:{self.port}"
        return f"{self.scheme}://{where}"


def _size(text: str) -> int:
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    text = text.strip().upper()
    factor = units.get(text[-1:], 1)
    return int(float(text[:-1] if text[-1:] in units else text) * factor)


def parse_scanner_url(url: str, schemes: tuple[str, ...]) -> ScannerAddress:
    """Parse a scanner URL (module docstring). Raises :class:`InvalidScannerUrl`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in schemes:
        raise InvalidScannerUrl(f"{url!r}: expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    try:
        timeout = float(params.get("timeout", DEFAULT_TIMEOUT_S))
        port = parts.port
    except ValueError as exc:
        raise InvalidScannerUrl(f"{url!r}: {exc}") from None
    if not 0 < timeout <= 600:
        raise InvalidScannerUrl(f"{url!r}: timeout must be between 0 and 600 seconds")
    if parts.hostname:
        return ScannerAddress(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme], None, timeout, params)
    if parts.path:
        return ScannerAddress(parts.scheme, None, None, Path(parts.path), timeout, params)
    raise InvalidScannerUrl(f"{url!r}: needs host:port or a socket path")


def spam_engine_from_url(url: str) -> SpamEngine:
    """An rspamd or spamd adapter for ``url``. Raises :class:`InvalidScannerUrl`."""
    addr = parse_scanner_url(url, ("rspamd", "spamd"))
    if addr.scheme == "rspamd":
        from inbound.scan.rspamd import RspamdClient

        return RspamdClient(addr)
    from inbound.scan.spamd import SpamdClient

    return SpamdClient(addr)


def virus_engine_from_url(url: str) -> VirusEngine:
    """A clamd adapter for ``url``. Raises :class:`InvalidScannerUrl`."""
    addr = parse_scanner_url(url, ("clamd",))
    try:
        stream_max = _size(addr.params.get("stream_max", str(DEFAULT_STREAM_MAX)))
    except ValueError:
        raise InvalidScannerUrl(f"{url!r}: stream_max must be a size such as 25M") from None
    if stream_max <= 0:
        raise InvalidScannerUrl(f"{url!r}: stream_max must be positive")
    from inbound.scan.clamd import ClamdClient

    return ClamdClient(addr, stream_max=stream_max)
