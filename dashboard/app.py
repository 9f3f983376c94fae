"""The web role (Starlette): health, Prometheus metrics, and the signed content links in webhooks.

Routes:
- ``GET /healthz``: ``{"status": "ok"|"degraded", "database": bool, "redis": bool}`` (503 when degraded).
- ``GET /metrics``: Prometheus text format; all processes of ``serve`` (multiprocess mode) plus the
  queue and outbox depth read at scrape time.
- ``GET /v1/messages/{id}/raw?expires=&signature=``: the stored message (``message/rfc822``).
- ``GET /v1/messages/{id}/attachments/{att}?expires=&signature=``: one attachment's decoded bytes.

Errors are JSON: ``{"error": {"code": "not_found", "message": "…"}}`` with the matching status.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from delivery.links import LinkSigner
from parser import parse
from store.blobs import BlobError, BlobNotFound, BlobStore
from store.db import Database
from store.errors import NotFound
from store.events import outbox_depth
from store.messages import get_message


@dataclass
class WebContext:
    """What the web role reads. ``queue_depth`` returns the rq queue length (raises when Redis is down)."""

    db: Database
    blobs: BlobStore
    links: LinkSigner
    queue_depth: Callable[[], int] | None = None


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(ctx: WebContext) -> Starlette:
    """The Starlette application of the web role."""

    async def healthz(request: Request) -> Response:
        db_ok = await asyncio.to_thread(_db_ok, ctx.db)
        redis_ok = True
        if ctx.queue_depth is not None:
            try:
                await asyncio.to_thread(ctx.queue_depth)
            except Exception:  # noqa: BLE001 - any Redis failure means degraded
                redis_ok = False
        ok = db_ok and redis_ok
        return JSONResponse({"status": "ok" if ok else "degraded", "database": db_ok, "redis": redis_ok},
                            status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        depth = await asyncio.to_thread(_depths, ctx)
        body = generate_latest(registry) + depth
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def _checked(request: Request) -> None:
        path = quote(request.url.path)
        if not ctx.links.verify(path, request.query_params.get("expires"), request.query_params.get("signature")):
            raise HTTPException(403, "link expired or signature invalid")

    async def raw(request: Request) -> Response:
        _checked(request)
        message_id = request.path_params["message_id"]
        data = await asyncio.to_thread(_load_raw, ctx, message_id)
        return Response(data, media_type="message/rfc822",
                        headers={"content-disposition": f'attachment; filename="{message_id}.eml"'})

    async def attachment(request: Request) -> Response:
        _checked(request)
        message_id, att_id = request.path_params["message_id"], request.path_params["attachment_id"]
        data = await asyncio.to_thread(_load_raw, ctx, message_id)
        parsed = await asyncio.to_thread(parse, data)
        att = next((a for a in parsed.attachments if a.id == att_id), None)
        if att is None:
            raise HTTPException(404, f"no attachment {att_id} in {message_id}")
        filename = att.filename or att_id
        return Response(att.content, media_type=att.content_type, headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "x-content-type-options": "nosniff",
            "content-security-policy": "sandbox",
        })

    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return error(exc.status_code, code, str(exc.detail))

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Route("/v1/messages/{message_id}/raw", raw),
            Route("/v1/messages/{message_id}/attachments/{attachment_id}", attachment),
        ],
        exception_handlers={HTTPException: http_error},
    )


def _db_ok(db: Database) -> bool:
    try:
        with db.read() as s:
            s.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - health check
        return False


def _load_raw(ctx: WebContext, message_id: str) -> bytes:
    try:
        message = get_message(ctx.db, message_id)
    except NotFound:
        raise HTTPException(404, f"no message {message_id}") from None
    if not message.raw_key:
        raise HTTPException(404, f"message {message_id} is zero-retention: nothing is stored")
    try:
        return ctx.blobs.get(message.raw_key)
    except BlobNotFound:
        raise HTTPException(404, f"stored content of {message_id} is missing") from None
    except BlobError as exc:
        raise HTTPException(503, f"blob store unavailable: {exc}") from None


def _depths(ctx: WebContext) -> bytes:
    outbox = GaugeMetricFamily("mailkite_outbox_depth", "Events waiting in the outbox")
    outbox.add_metric([], outbox_depth(ctx.db))
    families = [outbox]
    if ctx.queue_depth is not None:
        queue = GaugeMetricFamily("mailkite_queue_depth", "Webhook jobs waiting in the rq queue")
        try:
            queue.add_metric([], ctx.queue_depth())
            families.append(queue)
        except Exception:  # noqa: BLE001 - Redis down: omit the gauge
            pass
    registry = CollectorRegistry()

    class _Static:
        def collect(self):
            return families

    registry.register(_Static())
    return generate_latest(registry)

