"""The composition root for the web process: create_app(settings) -> Starlette with receiver and probes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.jobs import JobQueue
from app.settings import Settings
from app.webhooks import MAX_BODY, GroupCommitter, WebhookReceiver

log = logging.getLogger("diffwise.server")


class WebhookFastPath:
    """Hands POST $WEBHOOK_PATH straight to the receiver, skipping routing and exception middleware.

    The same receiver is also a normal route, so other methods still get Starlette's 405. Every other
    request gets Starlette's body limit (the receiver enforces the same 25 MiB cap itself, streaming).
    """

    def __init__(self, app: ASGIApp, path: str, receiver: WebhookReceiver) -> None:
        self._app = RequestBodyLimitMiddleware(app, MAX_BODY)
        self._path = path
        self._receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self._path and scope["method"] == "POST":
            await self._receiver(scope, receive, send)
        else:
            await self._app(scope, receive, send)


_PLACEHOLDER = """<!doctype html><html><head><meta charset="utf-8"><title>diffwise</title></head>
<body><h1>diffwise is running</h1><p>{status}</p></body></html>"""


def _delivery_counter() -> Callable[[int, bytes], None] | None:
    """app.metrics counts every receiver answer when it is installed."""
    try:
        from app.metrics import count_delivery
    except ImportError:
        return None
    return count_delivery


def create_app(
    settings: Settings,
    extra_routes: Sequence[BaseRoute] = (),
    *,
    queue: JobQueue | None = None,
    worker: bool = False,
) -> Starlette:
    """Receiver on $WEBHOOK_PATH (only when WEBHOOK_SECRET is set), /healthz, /readyz, then `extra_routes`.

    `queue` defaults to one built from settings when the app starts; `worker=True` runs an embedded huey
    consumer in this process for the app's lifetime. Extra routes come before the placeholder "/" page,
    so a real setup page replaces it.
    """
    state: dict[str, Any] = {"queue": queue}

    def get_queue() -> JobQueue:
        q = state["queue"]
        if q is None:
            q = state["queue"] = JobQueue(settings)
        return q

    routes: list[BaseRoute] = []
    middleware: list[Middleware] = []
    if settings.webhook_secret:
        # See GroupCommitter: a local SQLite commit without fsync is cheapest on the event loop itself; a commit
        # that waits for a disk flush or the network runs in a thread. DIFFWISE_GROUP_COMMIT overrides it.
        mode = getattr(settings, "group_commit", "auto")
        inline = (not settings.redis_url and not settings.fsync) if mode == "auto" else mode == "inline"
        committer = GroupCommitter(lambda batch: get_queue().submit_many(batch), inline=inline)
        receiver = WebhookReceiver(settings.webhook_secret, committer, observe=_delivery_counter())
        state["committer"] = committer
        routes.append(Route(settings.webhook_path, receiver, methods=["POST"]))
        middleware.append(Middleware(WebhookFastPath, path=settings.webhook_path, receiver=receiver))

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        try:
            await asyncio.wait_for(asyncio.to_thread(get_queue().ping), timeout=2.0)
        except Exception as exc:
            return JSONResponse({"ready": False, "queue": f"unreachable: {exc.__class__.__name__}"}, status_code=503)
        return JSONResponse({"ready": True, "queue": "ok", "webhooks": bool(settings.webhook_secret)})

    async def placeholder(_: Request) -> Response:
        if not settings.has_app_credentials:
            status = "No GitHub App credentials yet (APP_ID and PRIVATE_KEY). Registration page coming soon."
        elif not settings.webhook_secret:
            status = "WEBHOOK_SECRET is not set, so webhooks are refused."
        else:
            status = f"Webhooks are received at {settings.webhook_path}."
        return HTMLResponse(_PLACEHOLDER.format(status=status))

    routes += [Route("/healthz", healthz), Route("/readyz", readyz)]
    routes += list(extra_routes)
    routes.append(Route("/", placeholder))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not settings.webhook_secret:
            log.warning("WEBHOOK_SECRET is not set: %s is not served (404) until it is", settings.webhook_path)
        consumer = None
        q = await asyncio.to_thread(get_queue)
        stop = threading.Event()
        maintainer = threading.Thread(target=q.maintain, args=(stop,), name="diffwise-maintain", daemon=True)
        maintainer.start()
        if worker:
            consumer = await asyncio.to_thread(q.start_embedded)
        try:
            yield
        finally:
            if consumer is not None:
                await asyncio.to_thread(consumer.stop, True)
            stop.set()
            await asyncio.to_thread(maintainer.join, 5)
            committer = state.get("committer")
            if committer is not None and committer.batches:
                log.info(
                    "group commit: %d deliveries in %d transactions (%.1f per commit)",
                    committer.items,
                    committer.batches,
                    committer.items / committer.batches,
                )
            if queue is None:
                q.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.diffwise = state
    return app
