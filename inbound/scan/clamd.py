"""clamd adapter: the ``INSTREAM`` command over asyncio streams, TCP or a Unix socket (clamd(8),
"COMMANDS"). A dozen lines of protocol, so no library: ``zINSTREAM\\0``, then chunks of
``<length: 4 bytes, network order><data>``, then a zero-length chunk; clamd answers one
NUL-terminated line: ``stream: OK``, ``stream: <signature> FOUND``, or ``<text> ERROR``.

clamd refuses a stream longer than its ``StreamMaxLength`` (``INSTREAM size limit exceeded``) and
cuts the connection. The client knows the limit (``stream_max``, from the URL) and does not send a
larger message at all (:class:`MessageTooLarge`); chunks are never larger than the limit either.
ClamAV decodes the MIME structure itself (base64 and quoted-printable parts, nested multiparts,
attached messages) and unpacks archives, so the raw message is what we stream.
"""

from __future__ import annotations

import asyncio
import struct

from inbound.scan.engines import ScannerAddress
from inbound.scan.errors import MessageTooLarge, ScannerUnavailable, ScanProtocolError
from inbound.scan.results import VirusCheck

CHUNK_BYTES = 64 * 1024
MAX_REPLY_BYTES = 4096


def parse_reply(reply: bytes) -> VirusCheck:
    """A :class:`VirusCheck` from clamd's INSTREAM reply line. Raises :class:`MessageTooLarge` for a
    size-limit error, :class:`ScanProtocolError` for any other error or an unreadable line."""
    text = reply.rstrip(b"\0\r\n").decode("utf-8", "replace")
    if text.endswith(" ERROR"):
        if "size limit exceeded" in text:
            raise MessageTooLarge(f"clamd: {text}")
        raise ScanProtocolError(f"clamd: {text[:200]}")
    name, sep, status = text.partition(": ")
    if not sep:
        raise ScanProtocolError(f"unreadable clamd reply {text[:200]!r}")
    if status == "OK":
        return VirusCheck("clean", "clamav")
    if status.endswith(" FOUND"):
        return VirusCheck("infected", "clamav", (status[: -len(" FOUND")].strip(),))
    raise ScanProtocolError(f"unreadable clamd reply {text[:200]!r}")


class ClamdClient:
    """Implements :class:`~inbound.scan.engines.VirusEngine`. One connection per scan (clamd handles
    one command per connection unless IDSESSION is used). ``stream_max``: bytes, clamd's
    ``StreamMaxLength``. Raises :class:`ScannerUnavailable`, :class:`ScanProtocolError`,
    :class:`MessageTooLarge`."""

    name = "clamav"

    def __init__(self, address: ScannerAddress, *, stream_max: int) -> None:
        self.address = address
        self.timeout_s = address.timeout_s
        self.stream_max = stream_max
        self.chunk_bytes = min(CHUNK_BYTES, stream_max)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            if self.address.socket_path:
                return await asyncio.open_unix_connection(str(self.address.socket_path), limit=MAX_REPLY_BYTES)
            return await asyncio.open_connection(self.address.host, self.address.port, limit=MAX_REPLY_BYTES)
        except OSError as exc:
            raise ScannerUnavailable(f"clamd at {self.address.describe()}: {exc!r}") from None

    async def scan(self, raw: bytes) -> VirusCheck:
        """Stream ``raw`` to clamd; ``clean`` or ``infected`` with the signature name."""
        if len(raw) > self.stream_max:
            raise MessageTooLarge(f"{len(raw)} bytes exceed clamd's StreamMaxLength of {self.stream_max}")
        reader, writer = await self._connect()
        try:
            try:
                writer.write(b"zINSTREAM\0")
                view = memoryview(raw)
                for start in range(0, len(raw), self.chunk_bytes):
                    chunk = view[start:start + self.chunk_bytes]
                    writer.write(struct.pack("!L", len(chunk)))
                    writer.write(chunk)
                    await writer.drain()
                writer.write(struct.pack("!L", 0))
                await writer.drain()
            except OSError as exc:
                # clamd cuts the stream when it refuses it; its reply (if any) says why.
                reply = await _read_reply(reader, quiet=True)
                if reply:
                    return parse_reply(reply)
                raise ScannerUnavailable(f"clamd at {self.address.describe()} closed the stream: {exc!r}") from None
            reply = await _read_reply(reader)
            if not reply:
                raise ScannerUnavailable(f"clamd at {self.address.describe()} closed without a reply")
            return parse_reply(reply)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def aclose(self) -> None:
        """Nothing pooled: every scan has its own connection."""


async def _read_reply(reader: asyncio.StreamReader, *, quiet: bool = False) -> bytes:
    """clamd's NUL-terminated reply, at most :data:`MAX_REPLY_BYTES`; b"" when the peer closed."""
    try:
        return await reader.readuntil(b"\0")
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    except asyncio.LimitOverrunError:
        raise ScanProtocolError("clamd reply too long") from None
    except OSError:
        if quiet:
            return b""
        raise ScannerUnavailable("clamd connection lost before its reply") from None
