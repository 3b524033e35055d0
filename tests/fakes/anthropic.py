"""A loopback fake of the Anthropic Messages API (JSON and SSE) that scripts answers and records requests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.llm_context import estimate_tokens

MIN_CACHEABLE_TOKENS = 1024  # the API ignores cache breakpoints on shorter prefixes (Sonnet/Opus)


@dataclass(frozen=True)
class Reply:
    """A successful answer: a forced tool call (`tool_input`) and/or text."""

    tool_input: dict[str, Any] | None = None
    tool_name: str | None = None  # default: the tool the request forced
    text: str | None = None
    delay: float = 0.0
    output_tokens: int | None = None
    stop_reason: str | None = None


@dataclass(frozen=True)
class Fail:
    """An error answer with the API's error body; `retry_after` sets the header."""

    status: int
    kind: str = "api_error"
    message: str = "fake failure"
    retry_after: float | None = None
    delay: float = 0.0


Responder = Callable[[dict[str, Any]], "Reply | Fail"]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        """Everything the request sent, flattened (system, tools and messages) for assertions."""
        return json.dumps(self.body, ensure_ascii=False)


def _error_types() -> dict[int, str]:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }


class FakeAnthropic:
    """Run with `with FakeAnthropic() as fake:`; point the SDK at `fake.base_url`."""

    def __init__(self, default: Responder | None = None) -> None:
        self.requests: list[Recorded] = []
        self.script: list[Reply | Fail | Responder] = []
        self.default: Responder = default or (lambda body: Reply(tool_input={"summary": "", "findings": []}))
        self._cache: set[str] = set()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count, methods=["POST"]),
            ]
        )

    # ---- control ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *answers: Reply | Fail | Responder) -> None:
        with self._lock:
            self.script.extend(answers)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.script.clear()
            self._cache.clear()

    def messages_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    def __enter__(self) -> FakeAnthropic:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Anthropic server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ---- endpoints --------------------------------------------------------------------------
    async def _count(self, request: Request) -> Response:
        body = await request.json()
        self._record(request, body)
        return JSONResponse({"input_tokens": sum(n for _, n in _segments(body))})

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        self._record(request, body)
        with self._lock:
            answer = self.script.pop(0) if self.script else self.default
        if not isinstance(answer, Reply | Fail):
            answer = answer(body)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if isinstance(answer, Fail):
            headers = {} if answer.retry_after is None else {"retry-after": f"{answer.retry_after:g}"}
            kind = answer.kind if answer.kind != "api_error" else _error_types().get(answer.status, "api_error")
            payload = {"type": "error", "error": {"type": kind, "message": answer.message}}
            return JSONResponse(payload, status_code=answer.status, headers=headers)
        message = self._message(body, answer)
        if body.get("stream"):
            return StreamingResponse(_sse(message), media_type="text/event-stream")
        return JSONResponse(message)

    def _record(self, request: Request, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(Recorded(request.url.path, dict(request.headers), body))

    def _message(self, body: dict[str, Any], answer: Reply) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if answer.text is not None:
            content.append({"type": "text", "text": answer.text})
        forced = (body.get("tool_choice") or {}).get("name")
        if answer.tool_input is not None:
            name = answer.tool_name or forced or "tool"
            block_id = "toolu_" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]
            content.append({"type": "tool_use", "id": block_id, "name": name, "input": answer.tool_input})
        usage = self._usage(body)
        out_text = json.dumps(answer.tool_input or {}) + (answer.text or "")
        usage["output_tokens"] = answer.output_tokens if answer.output_tokens is not None else estimate_tokens(out_text)
        stop = answer.stop_reason or ("tool_use" if answer.tool_input is not None else "end_turn")
        return {
            "id": "msg_fake_" + str(len(self.requests)),
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    def _usage(self, body: dict[str, Any]) -> dict[str, Any]:
        """Prompt-cache simulation: a prefix ending at a cache_control breakpoint is written once, then read."""
        segments = _segments(body)
        total = sum(n for _, n in segments)
        digest = hashlib.sha256()
        prefix_tokens = 0
        best_hit = 0
        best_write = 0
        for i, (part, tokens) in enumerate(segments):
            digest.update(json.dumps(part, sort_keys=True, ensure_ascii=False).encode())
            prefix_tokens += tokens
            if not _has_breakpoint(part) or prefix_tokens < MIN_CACHEABLE_TOKENS:
                continue
            key = digest.copy().hexdigest() + f":{body.get('model')}:{i}"
            with self._lock:
                if key in self._cache:
                    best_hit = prefix_tokens
                else:
                    self._cache.add(key)
                    best_write = prefix_tokens
        write = max(0, best_write - best_hit)
        return {
            "input_tokens": total - best_hit - write,
            "cache_read_input_tokens": best_hit,
            "cache_creation_input_tokens": write,
        }


def _segments(body: dict[str, Any]) -> list[tuple[Any, int]]:
    """The request in cache order (tools, system, messages' blocks) with each part's token estimate."""
    parts: list[Any] = list(body.get("tools") or [])
    system = body.get("system")
    if isinstance(system, str):
        parts.append({"type": "text", "text": system})
    elif isinstance(system, list):
        parts.extend(system)
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            parts.append({"type": "text", "text": content, "role": message.get("role")})
        else:
            parts.extend(content or [])
    return [(p, estimate_tokens(p["text"] if p.get("type") == "text" else json.dumps(p))) for p in parts]


def _has_breakpoint(part: Any) -> bool:
    return isinstance(part, dict) and bool(part.get("cache_control"))


def _sse(message: dict[str, Any]) -> Iterator[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
            text = block["text"]
            for i in range(0, len(text), 16):
                delta = {"type": "text_delta", "text": text[i : i + 16]}
                yield event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        else:
            opening = {**block, "input": {}}
            start_block = {"type": "content_block_start", "index": index, "content_block": opening}
            yield event("content_block_start", start_block)
            raw = json.dumps(block["input"])
            for i in range(0, len(raw), 24):
                delta = {"type": "input_json_delta", "partial_json": raw[i : i + 24]}
                yield event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
    )
    yield event("message_stop", {"type": "message_stop"})
