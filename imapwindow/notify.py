"""Change notifications between processes over Redis pub/sub (one channel, JSON events).

Events (all carry ``t``):
- ``{"t": "mail", "domain": NAME}``: new messages committed for the domain (the MX process, after
  the ingest transaction commits: ``IngestPipeline(on_stored=...)``);
- ``{"t": "flags", "domain": NAME}``: stored flags changed (an IMAP process, after its commit);
- ``{"t": "revoked", "id": APP_PASSWORD_ID}``: an app-password was revoked (the CLI).

:class:`Publisher` never blocks its caller (a daemon thread publishes) and never raises: a lost
event only delays an update until the views' safety refresh. :class:`Subscriber` is the ONE
subscription of an IMAP process; it hands each event to a callback that refreshes the affected
shared views (:mod:`imapwindow.mailbox`), which then wake their sessions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from typing import Awaitable, Callable

import redis
import redis.asyncio as aioredis

log = logging.getLogger("mailkite.imap.notify")

CHANNEL = "mailkite:imap:events"
RECONNECT_S = (0.5, 1, 2, 5)


class Publisher:
    """Publishes events from any thread or event loop without blocking it."""

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._queue: queue.SimpleQueue[dict | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="imap-notify", daemon=True)
        self._thread.start()

    def publish(self, event: dict) -> None:
        """Queue ``event`` for publication."""
        self._queue.put(event)

    def mail_stored(self, domains: set[str] | list[str]) -> None:
        for d in sorted(set(domains)):
            self.publish({"t": "mail", "domain": d})

    def flags_changed(self, domain: str) -> None:
        self.publish({"t": "flags", "domain": domain})

    def revoked(self, password_id: str) -> None:
        self.publish({"t": "revoked", "id": password_id})

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued (up to ``timeout`` seconds) and stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        client = redis.Redis.from_url(self._url, socket_timeout=5, socket_connect_timeout=5)
        stopping = False
        while not stopping:
            texts, stopping = self._drain(self._queue.get())
            if not texts:
                continue
            try:
                with client.pipeline(transaction=False) as pipe:
                    for text in texts:
                        pipe.publish(CHANNEL, text)
                    pipe.execute()
            except redis.RedisError as exc:
                log.warning("imap.notify_failed", extra={"kv": {"error": str(exc), "events": len(texts)}})

    def _drain(self, first: dict | None) -> tuple[list[str], bool]:
        """``first`` and everything queued behind it, as the distinct messages to publish in one
        round trip (under load many commits name the same domain: a session needs one wake-up,
        not one per message), in order of first appearance; and whether a stop was queued."""
        events = [first]
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                break
        stopping = None in events
        if stopping:
            events = events[:events.index(None)]
        return list(dict.fromkeys(json.dumps(e, separators=(",", ":"), sort_keys=True) for e in events)), stopping


def publish_once(redis_url: str, event: dict) -> bool:
    """Publish one event synchronously (for the CLI); False when Redis is unreachable."""
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        client.publish(CHANNEL, json.dumps(event, separators=(",", ":")))
        client.close()
        return True
    except redis.RedisError:
        return False


class Subscriber:
    """The process's one subscription; ``on_event(event)`` runs on the event loop for each event,
    ``on_reconnect()`` after a reconnection (events may have been missed)."""

    def __init__(self, redis_url: str, on_event: Callable[[dict], Awaitable[None]],
                 on_reconnect: Callable[[], Awaitable[None]]) -> None:
        self._url = redis_url
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imap-subscriber")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    async def _run(self) -> None:
        attempt = 0
        first = True
        while True:
            client = aioredis.Redis.from_url(self._url)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(CHANNEL)
                self.ready.set()
                if not first:
                    await self._on_reconnect()
                first = False
                attempt = 0
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                    except (ValueError, TypeError):
                        continue
                    if isinstance(event, dict):
                        try:
                            await self._on_event(event)
                        except Exception:  # noqa: BLE001 - keep listening
                            log.exception("imap.event_failed")
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                delay = RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)]
                attempt += 1
                log.warning("imap.subscriber_down", extra={"kv": {"error": str(exc), "retry_in_s": delay}})
                await asyncio.sleep(delay)
            finally:
                try:
                    await client.aclose()
                except Exception:  # noqa: BLE001
                    pass
