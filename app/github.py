"""GitHub access: App JWT → installation clients (githubkit), shared token cache, GHES base URL, bounded retries."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import BaseCacheStrategy, MemCacheStrategy, RedisCache, RedisCacheStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed, RequestTimeout
from githubkit.retry import RetryOption

from app.errors import PermanentError, RetryLater
from app.settings import USER_AGENT, Settings, api_base_url

if TYPE_CHECKING:
    from githubkit.auth import AppInstallationAuthStrategy

log = logging.getLogger(__name__)


DELIVERY_HEADER = "X-Diffwise-Delivery"
TOKEN_CACHE_PREFIX = "diffwise:githubkit:"

Transport = httpx.AsyncBaseTransport | httpx.BaseTransport


@dataclass(frozen=True)
class RetryPolicy:
    """How long a worker may wait in-process before handing the job back to the queue.

    Short waits (a Retry-After of a few seconds, a flaky 502) are retried here a bounded number of
    times; anything longer raises RetryLater so the job is rescheduled instead of blocking a worker.
    """

    max_inline_wait: float = 10.0  # seconds we are willing to sleep in a worker
    rate_limit_retries: int = 2
    server_retries: int = 2
    server_backoff: float = 1.0  # first backoff for 5xx/timeouts; doubles per attempt
    server_reschedule_delay: float = 30.0  # RetryLater delay when 5xx/timeouts persist
    rate_limit_reschedule_floor: float = 5.0  # never reschedule sooner than this after a rate limit

    def decide(self, exc: GitHubException, retry_count: int) -> RetryOption:
        """githubkit's `auto_retry` hook: retry (with a wait), give up, or raise RetryLater."""
        if isinstance(exc, RateLimitExceeded):
            wait = max(0.0, exc.retry_after.total_seconds())
            if wait <= self.max_inline_wait and retry_count < self.rate_limit_retries:
                log.info("rate limited (%s); retrying in %.1fs", exc.response.status_code, wait)
                # githubkit treats a zero timedelta as "no hint" and sleeps 60 s: never hand it zero.
                return RetryOption(True, timedelta(seconds=max(wait, 0.01)))
            raise RetryLater(
                f"GitHub rate limit ({exc.response.status_code}) on {exc.request.method} {exc.request.url.path}",
                delay=max(wait, self.rate_limit_reschedule_floor),
            ) from exc
        if isinstance(exc, RequestFailed):
            status = exc.response.status_code
            if status == 429:  # throttled without usable headers
                raise RetryLater(f"GitHub answered 429 on {exc.request.url.path}", delay=60.0) from exc
            if status >= 500:
                return self._transient(exc, retry_count, f"GitHub answered {status} on {exc.request.url.path}")
            return RetryOption(False)
        if isinstance(exc, RequestTimeout):
            return self._transient(exc, retry_count, f"timeout on {exc.request.url.path}")
        if isinstance(exc, RequestError):  # connection refused/reset and friends
            inner = exc.exc
            if isinstance(inner, RequestFailed) and inner.response.status_code in (403, 404):
                # minting an installation token was refused: the App was uninstalled or lost access.
                # Waiting will not change that, so the job ends now instead of retrying for minutes.
                raise PermanentError(
                    f"GitHub refused an installation token ({inner.response.status_code}) on {inner.request.url.path}"
                ) from exc
            return self._transient(exc, retry_count, f"request error: {exc.exc!r}")
        return RetryOption(False)

    def _transient(self, exc: GitHubException, retry_count: int, what: str) -> RetryOption:
        if retry_count < self.server_retries:
            wait = max(0.01, min(self.server_backoff * (2**retry_count), self.max_inline_wait))
            log.info("%s; retry %d in %.1fs", what, retry_count + 1, wait)
            return RetryOption(True, timedelta(seconds=wait))
        raise RetryLater(what, delay=self.server_reschedule_delay) from exc

    __call__ = decide


def graphql_url(base_url: str) -> str:
    """GitHub.com serves GraphQL at /graphql; GHES at /api/graphql next to /api/v3."""
    base = base_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def _metrics_hooks(installation: int | None) -> tuple[list[Any], list[Any]]:
    """GitHub API calls and remaining rate limit per installation, for /metrics (when app.metrics is there)."""
    try:
        from app.metrics import github_event_hooks
    except ImportError:
        return [], []
    sync_hook, async_hook = github_event_hooks(installation)
    return [sync_hook], [async_hook]


def _delivery_hooks(delivery_id: str | None, installation: int | None = None) -> dict[str, list[Any]]:
    async def on_request(request: httpx.Request) -> None:
        if delivery_id:
            request.headers[DELIVERY_HEADER] = delivery_id

    async def on_response(response: httpx.Response) -> None:
        request = response.request
        log.debug(
            "github %s %s → %s",
            request.method,
            request.url.path,
            response.status_code,
            extra={"delivery_id": delivery_id},
        )

    return {"request": [on_request], "response": [on_response, *_metrics_hooks(installation)[1]]}


def _sync_delivery_hooks(delivery_id: str | None, installation: int | None = None) -> dict[str, list[Any]]:
    def on_request(request: httpx.Request) -> None:
        if delivery_id:
            request.headers[DELIVERY_HEADER] = delivery_id

    return {"request": [on_request], "response": _metrics_hooks(installation)[0]}


class SharedRedisCache(RedisCache):
    """githubkit's RedisCache for sync and async clients alike, never storing an entry that is already stale.

    One sync client serves both modes: jobs run each in their own `asyncio.run` loop, and an asyncio
    Redis connection must not outlive the loop it was opened on. A GET/SET on Redis is sub-millisecond.
    """

    def set(self, key: str, value: str, ex: timedelta) -> None:
        ttl_ms = int(ex.total_seconds() * 1000)
        if ttl_ms <= 0:  # a token inside githubkit's one-minute margin: used once, minted again next time
            self.client.delete(self._get_key(key))
            return
        self.client.set(self._get_key(key), value, px=ttl_ms)

    async def aget(self, key: str) -> str | None:
        return self.get(key)

    async def aset(self, key: str, value: str, ex: timedelta) -> None:
        self.set(key, value, ex)


class SharedRedisCacheStrategy(RedisCacheStrategy):
    """App JWT and installation tokens in Redis, so every web and worker process mints one per installation."""

    def get_cache_storage(self) -> SharedRedisCache:
        return SharedRedisCache(self.client, self.prefix)

    async def get_async_cache_storage(self) -> SharedRedisCache:  # type: ignore[override]
        return self.get_cache_storage()


def token_cache_strategy(settings: Settings) -> BaseCacheStrategy:
    """Redis (shared by all processes) when REDIS_URL is set; otherwise this process's memory."""
    redis_url = getattr(settings, "redis_url", None)
    if not redis_url:
        return MemCacheStrategy()
    from redis import Redis

    client = Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    return SharedRedisCacheStrategy(client, prefix=TOKEN_CACHE_PREFIX)


class GitHubApp:
    """One per process: builds App and installation clients that share one token cache.

    githubkit keeps the App JWT and every installation token in its cache strategy, keyed by app and
    installation, and refreshes a token a minute before `expires_at`. Sharing the strategy between all
    clients of the process means jobs reuse tokens instead of minting one per request or per job; with
    REDIS_URL the cache lives in Redis, shared by every web and worker process.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        cache_strategy: BaseCacheStrategy | None = None,
        timeout: float = 30.0,
    ) -> None:
        app_id, private_key = getattr(settings, "app_id", None), getattr(settings, "private_key", None)
        if not app_id or not private_key:
            raise ValueError("GitHub App credentials missing: set APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH)")
        self.settings = settings
        self.base_url = api_base_url(settings)
        self.retry = retry or RetryPolicy()
        self._auth = AppAuthStrategy(str(app_id), private_key)
        self._cache = cache_strategy or token_cache_strategy(settings)
        self._transport = transport
        self._timeout = timeout

    def _options(self, delivery_id: str | None, installation: int | None = None) -> dict[str, Any]:
        transport = self._transport
        sync_transport = transport if isinstance(transport, httpx.BaseTransport) else None
        async_transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
        return {
            "base_url": self.base_url + "/",
            "user_agent": USER_AGENT,
            "timeout": self._timeout,
            "transport": sync_transport,
            "async_transport": async_transport,
            "event_hooks": _sync_delivery_hooks(delivery_id, installation),
            "async_event_hooks": _delivery_hooks(delivery_id, installation),
            "cache_strategy": self._cache,
            # Never serve PR state from an HTTP cache: GitHub's max-age=60 can hide the push we react to.
            "http_cache": False,
            "auto_retry": self.retry.decide,
        }

    def app_client(self, delivery_id: str | None = None) -> GitHub[AppAuthStrategy]:
        """A client authenticated as the App itself (JWT): /app, installations, hook deliveries."""
        return GitHub(self._auth, **self._options(delivery_id))

    def installation_client(
        self, installation_id: int, delivery_id: str | None = None
    ) -> GitHub[AppInstallationAuthStrategy]:
        """A client acting as one installation; its token comes from (and goes to) the shared cache."""
        options = self._options(delivery_id, int(installation_id))
        return GitHub(self._auth.as_installation(int(installation_id)), **options)

    @property
    def graphql_url(self) -> str:
        return graphql_url(self.base_url)


_shared_lock = threading.Lock()
_shared: dict[tuple[str, str, int], GitHubApp] = {}


def shared_app(settings: Settings) -> GitHubApp:
    """The process's GitHubApp for these credentials, created on first use (so tokens outlive one job)."""
    key = (str(settings.app_id), api_base_url(settings), hash(settings.private_key))
    with _shared_lock:
        app = _shared.get(key)
        if app is None:
            app = GitHubApp(settings)
            _shared[key] = app
        return app
