"""The HTTP side of a delivery: one POST, no redirects, a hard timeout, the result as data.

httpx errors are translated here into :class:`~delivery.outcome.AttemptResult` values; nothing
raises out of :meth:`WebhookSender.post`.
"""

from __future__ import annotations

import time

import httpx

from delivery.outcome import AttemptResult
from delivery.schedule import parse_retry_after

USER_AGENT = "mailkite-webhooks/0.1 (+https://www.standardwebhooks.com)"
MAX_RESPONSE_BYTES = 64 * 1024


def _error_text(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _result(response: httpx.Response, started: float) -> AttemptResult:
    latency = (time.perf_counter() - started) * 1000
    error = None
    if response.is_redirect:
        error = f"redirect to {response.headers.get('location', '?')} not followed"
    elif not response.is_success:
        error = f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, latency, error, parse_retry_after(response.headers.get("retry-after")))


class WebhookSender:
    """A reused ``httpx.Client`` (connection pooling matters: PERF-NOTES.md). ``timeout`` in seconds
    covers connect, write, read and pool waits."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                    headers={"user-agent": USER_AGENT})

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        started = time.perf_counter()
        try:
            with self._client.stream("POST", url, content=body, headers=headers) as response:
                # Read a bounded amount so keep-alive works without trusting the receiver's size.
                for _ in response.iter_bytes(MAX_RESPONSE_BYTES):
                    break
                return _result(response, started)
        except httpx.HTTPError as exc:
            return AttemptResult(None, (time.perf_counter() - started) * 1000, _error_text(exc))

    def close(self) -> None:
        self._client.close()


class AsyncWebhookSender:
    """The asyncio twin, for deliveries made inside an SMTP session (zero-retention domains)."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                         headers={"user-agent": USER_AGENT})

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        started = time.perf_counter()
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                async for _ in response.aiter_bytes(MAX_RESPONSE_BYTES):
                    break
                return _result(response, started)
        except httpx.HTTPError as exc:
            return AttemptResult(None, (time.perf_counter() - started) * 1000, _error_text(exc))

    async def aclose(self) -> None:
        await self._client.aclose()
