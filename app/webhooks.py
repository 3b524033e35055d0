"""The webhook receiver: raw body → verify X-Hub-Signature-256 → dedupe → durable enqueue → 202.

A raw ASGI app (mounted as a Starlette route) because this is the hot path: no JSON parsing, no GitHub or
LLM call, no Request object. Enqueues go through a group committer: concurrent deliveries share one
transaction, and each request is answered only after the transaction holding it is durable.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from app.delivery import Delivery

log = logging.getLogger("diffwise.webhooks")

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
_EVENT = re.compile(rb"^[a-z][a-z0-9_]{0,63}$")
_DELIVERY = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_HOOK_ID = re.compile(rb"^[0-9]{1,20}$")
_SIGNATURE = re.compile(rb"^sha256=[0-9a-fA-F]{64}$")

Scope = MutableMapping[str, Any]  # the ASGI scope, as starlette.types spells it
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]
Submit = Callable[[Sequence[Delivery]], list[bool]]


class QueueUnavailable(Exception):
    """The queue could not durably take the delivery (disk full, Redis down)."""


class GroupCommitter:
    """Batches concurrent submissions into one blocking `submit` call at a time.

    `inline=True` runs that call on the event loop thread. For a local SQLite commit without fsync a batch
    takes well under a few milliseconds, and skipping the thread hand-off (executor submit, wake-up, result
    back through the loop's self-pipe) saves more CPU than the loop loses while it writes. When each commit
    waits for the disk or the network (fsync, Redis), leave it False.
    """

    def __init__(self, submit: Submit, max_batch: int = 512, *, inline: bool = False) -> None:
        self._submit = submit
        self._max_batch = max_batch
        self._inline = inline
        self._pending: list[tuple[Delivery, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, delivery: Delivery) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # one loop turn: requests whose bytes already arrived join this batch
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            deliveries = [d for d, _ in batch]
            try:
                if self._inline:
                    results = self._submit(deliveries)
                else:
                    results = await asyncio.to_thread(self._submit, deliveries)
            except Exception as exc:
                log.error("enqueue of %d deliveries failed: %s", len(batch), exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(QueueUnavailable(str(exc)))
                continue
            self.batches += 1
            self.items += len(batch)
            for (_, future), fresh in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(fresh)
            if self._inline:
                await asyncio.sleep(0)  # let the requests that arrived meanwhile join the next batch


class WebhookReceiver:
    """POST handler for $WEBHOOK_PATH. Every client mistake is a 4xx; only a failing queue gives a 503."""

    def __init__(
        self,
        secret: str,
        committer: GroupCommitter,
        max_body: int = MAX_BODY,
        observe: Callable[[int, bytes], None] | None = None,
    ) -> None:
        self._key = secret.encode("utf-8")
        self._committer = committer
        self._max_body = max_body
        self._observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, text = await self._handle(scope, receive)
        if self._observe is not None:
            self._observe(status, text)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(text))],
            }
        )
        await send({"type": "http.response.body", "body": text})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        signature = event = delivery_id = hook_id = length = None
        for name, value in scope["headers"]:
            if name == b"x-hub-signature-256":
                signature = value
            elif name == b"x-github-event":
                event = value
            elif name == b"x-github-delivery":
                delivery_id = value
            elif name == b"x-github-hook-id":
                hook_id = value
            elif name == b"content-length":
                length = value
        if signature is None:
            return 401, b"missing X-Hub-Signature-256\n"
        if event is None or delivery_id is None:
            return 400, b"missing X-GitHub-Event or X-GitHub-Delivery\n"
        if not _EVENT.match(event) or not _DELIVERY.match(delivery_id):
            return 400, b"malformed X-GitHub-Event or X-GitHub-Delivery\n"
        if length is not None and (not length.isdigit() or int(length) > self._max_body):
            return (413, b"payload too large\n") if length.isdigit() else (400, b"bad Content-Length\n")

        body = await self._read(receive)
        if body is None:
            return 413, b"payload too large\n"
        if not _SIGNATURE.match(signature):
            return 401, b"invalid signature\n"
        expected = hmac.digest(self._key, body, "sha256")
        if not hmac.compare_digest(expected, bytes.fromhex(signature[7:].decode("ascii"))):
            return 401, b"invalid signature\n"
        if event == b"ping":
            return 200, b"pong\n"

        hook = hook_id.decode("ascii") if hook_id is not None and _HOOK_ID.match(hook_id) else None
        delivery = Delivery(
            id=delivery_id.decode("ascii"),
            event=event.decode("ascii"),
            body=body,
            signature=signature.decode("ascii"),
            received_at=time.time(),
            hook_id=hook,
        )
        try:
            fresh = await self._committer.submit(delivery)
        except QueueUnavailable:
            return 503, b"queue unavailable, retry later\n"
        # 202 carries no body: one write (headers) per accepted delivery instead of two.
        return (202, b"") if fresh else (200, b"duplicate delivery\n")

    async def _read(self, receive: Receive) -> bytes | None:
        """The body, or None once it passes the cap (stop reading; the connection is closed after the 413)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)
