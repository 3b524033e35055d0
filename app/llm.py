"""Anthropic client factory and one bounded, retrying call: keys, endpoint, model, timeouts, providers."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from app.errors import DiffwiseError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-4-6"  # the one place a model id is written; policy or DIFFWISE_MODEL override it

Provider = Literal["anthropic", "bedrock", "vertex"]
Sleep = Callable[[float], Awaitable[None]]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class LLMUnavailable(DiffwiseError):
    """The LLM could not answer: `reason` is one short line for the review; `retryable` says try later."""

    def __init__(self, reason: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True)
class LLMConfig:
    api_key: str | None = None
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    provider: Provider = "anthropic"
    connect_timeout: float = 5.0
    read_timeout: float = 120.0  # per call; a review call rarely takes over a minute
    max_retries: int = 2  # our own loop; the SDK's is off so retry-after can be capped
    max_retry_wait: float = 30.0  # a retry-after longer than this is "past its retries", not a sleep
    aws_region: str | None = None
    vertex_region: str | None = None
    vertex_project: str | None = None

    @property
    def configured(self) -> bool:
        return self.provider != "anthropic" or bool(self.api_key)

    @classmethod
    def from_settings(cls, settings: Any = None, model: str | None = None, **overrides: Any) -> LLMConfig:
        """Read key/endpoint/model from Settings-like values (attributes or a mapping); a policy model wins."""

        def get(name: str, env: str | None = None) -> Any:
            if isinstance(settings, Mapping):
                value = settings.get(name)
            else:
                value = getattr(settings, name, None)
            if value is None and env is not None:
                value = os.environ.get(env) or None
            return value

        provider = str(get("llm_provider", "DIFFWISE_LLM_PROVIDER") or "anthropic").lower()
        if provider not in ("anthropic", "bedrock", "vertex"):
            provider = "anthropic"
        key = get("anthropic_api_key", "ANTHROPIC_API_KEY")
        if hasattr(key, "get_secret_value"):  # pydantic SecretStr
            key = key.get_secret_value()
        chosen = model or get("model", "DIFFWISE_MODEL") or DEFAULT_MODEL
        config = cls(
            api_key=str(key) if key else None,
            base_url=get("anthropic_base_url", "ANTHROPIC_BASE_URL"),
            model=str(chosen),
            provider=provider,  # type: ignore[arg-type]
            aws_region=get("aws_region", "AWS_REGION"),
            vertex_region=get("vertex_region", "CLOUD_ML_REGION"),
            vertex_project=get("vertex_project", "ANTHROPIC_VERTEX_PROJECT_ID"),
        )
        return replace(config, **overrides) if overrides else config


_prewarm_lock = threading.Lock()
_prewarmed = False


def prewarm() -> None:
    """Import the SDK (~2-4 s cold) on a daemon thread, so a worker's first LLM call does not pay for it."""
    global _prewarmed
    with _prewarm_lock:
        if _prewarmed or "anthropic" in sys.modules:
            return
        _prewarmed = True

    def load() -> None:
        try:
            import anthropic  # noqa: F401
        except ImportError:  # pragma: no cover - a dependency of the package
            pass

    threading.Thread(target=load, name="anthropic-prewarm", daemon=True).start()


def make_sdk_client(config: LLMConfig) -> Any:
    """The SDK's async client for the configured provider, imported lazily (the SDK costs ~2 s to import)."""
    if not config.configured:
        raise LLMUnavailable("no ANTHROPIC_API_KEY configured")
    try:
        import anthropic
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise LLMUnavailable("the anthropic package is not installed") from exc
    timeout = anthropic.Timeout(config.read_timeout, connect=config.connect_timeout)
    common: dict[str, Any] = {"timeout": timeout, "max_retries": 0}
    if config.base_url:
        common["base_url"] = config.base_url
    try:
        if config.provider == "bedrock":
            return anthropic.AsyncAnthropicBedrock(aws_region=config.aws_region, **common)
        if config.provider == "vertex":
            vertex: dict[str, Any] = {"region": config.vertex_region, "project_id": config.vertex_project}
            return anthropic.AsyncAnthropicVertex(**{k: v for k, v in vertex.items() if v}, **common)
    except (ImportError, ModuleNotFoundError) as exc:
        extra = "bedrock" if config.provider == "bedrock" else "vertex"
        raise LLMUnavailable(f"{config.provider} needs the optional extra: pip install 'diffwise[{extra}]'") from exc
    except Exception as exc:  # provider credentials/region missing
        raise LLMUnavailable(f"{config.provider} client could not be created: {exc}") from exc
    return anthropic.AsyncAnthropic(api_key=config.api_key, **common)


@dataclass(frozen=True)
class CallStats:
    attempts: int
    seconds: float


class LLMClient:
    """Messages API calls with bounded retries on 429/529/5xx/timeouts that honour `retry-after`."""

    def __init__(self, config: LLMConfig, sdk: Any = None, *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self._given = sdk
        self._sdk: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sleep = sleep

    @property
    def sdk(self) -> Any:
        """The SDK client of the running event loop (its connection pool cannot outlive the loop)."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._loop is not loop:
            self._sdk = make_sdk_client(self.config)
            self._loop = loop
        return self._sdk

    async def aclose(self) -> None:
        """Close the pooled connections (a review calls this when it is done); the next call reopens."""
        sdk, self._sdk, self._loop = self._sdk, None, None
        if sdk is not None:
            try:
                await sdk.close()
            except Exception:  # closing is best effort
                log.debug("closing the Anthropic client failed", exc_info=True)

    @property
    def model(self) -> str:
        return self.config.model

    async def create(self, *, stream: bool = False, **params: Any) -> Any:
        """One Messages call (model defaulted), retried within bounds; raises LLMUnavailable, never SDK errors."""
        params.setdefault("model", self.config.model)

        async def call() -> Any:
            if stream:
                async with self.sdk.messages.stream(**params) as events:
                    return await events.get_final_message()
            return await self.sdk.messages.create(**params)

        return await self._with_retries(call)

    async def count_tokens(self, **params: Any) -> int | None:
        """The API's token count, or None when it cannot be had (the caller then estimates)."""
        params.setdefault("model", self.config.model)
        params.pop("max_tokens", None)
        try:
            result = await self.sdk.messages.count_tokens(**params)
        except Exception as exc:  # counting is an optimisation: any failure means "estimate instead"
            log.debug("count_tokens unavailable: %s", exc)
            return None
        return int(getattr(result, "input_tokens", 0)) or None

    async def _with_retries(self, call: Callable[[], Awaitable[Any]]) -> Any:
        import anthropic

        attempt = 0
        while True:
            try:
                return await call()
            except LLMUnavailable:
                raise
            except ImportError as exc:  # Bedrock/Vertex import their cloud SDKs on first use
                extra = "bedrock" if self.config.provider == "bedrock" else "vertex"
                raise LLMUnavailable(
                    f"{self.config.provider} needs the optional extra: pip install 'diffwise[{extra}]' ({exc.name})"
                ) from exc
            except anthropic.APIStatusError as exc:
                status = exc.status_code
                if status not in RETRYABLE_STATUS and status < 500:
                    raise LLMUnavailable(_status_reason(status, exc), status=status) from exc
                wait = _retry_after(exc.response.headers) if exc.response is not None else None
                failure = LLMUnavailable(_status_reason(status, exc), retryable=True, status=status)
            except anthropic.APITimeoutError as exc:
                wait, failure = None, LLMUnavailable("Anthropic API timed out", retryable=True)
                failure.__cause__ = exc
            except anthropic.APIConnectionError as exc:
                wait, failure = None, LLMUnavailable("Anthropic API unreachable", retryable=True)
                failure.__cause__ = exc
            except anthropic.AnthropicError as exc:  # missing provider extra, credentials: not transient
                detail = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                raise LLMUnavailable(f"{self.config.provider} client error: {detail[:200]}") from exc
            if attempt >= self.config.max_retries:
                raise failure
            if wait is None:
                wait = min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())
            if wait > self.config.max_retry_wait:
                failure.reason += f" (retry-after {wait:.0f}s exceeds {self.config.max_retry_wait:.0f}s)"
                raise failure
            attempt += 1
            log.info("LLM call failed (%s); retry %d in %.1fs", failure.reason, attempt, wait)
            await self._sleep(wait)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            pass
        import email.utils

        parsed = email.utils.parsedate_tz(raw)
        if parsed is not None:
            return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))
    return None


def _status_reason(status: int, exc: Exception) -> str:
    names = {
        400: "rejected the request",
        401: "rejected the API key",
        403: "refused access",
        404: "does not know the model",
        413: "found the request too large",
        429: "rate limited",
        529: "overloaded",
    }
    what = names.get(status, "server error" if status >= 500 else "error")
    return f"Anthropic API {what} ({status})"
