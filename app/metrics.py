"""Prometheus metrics: live counters the hot paths bump, and collectors that read the stores at scrape time."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.settings import Settings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("diffwise.metrics")

METRICS_PATH = "/metrics"
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# The receiver's answers, by what they mean (see app.webhooks.WebhookReceiver._handle).
_DELIVERY_REASONS: dict[tuple[int, bytes], str] = {
    (202, b""): "accepted",
    (200, b"duplicate delivery\n"): "duplicate",
    (200, b"pong\n"): "ping",
    (401, b"missing X-Hub-Signature-256\n"): "missing_signature",
    (401, b"invalid signature\n"): "invalid_signature",
    (400, b"missing X-GitHub-Event or X-GitHub-Delivery\n"): "missing_headers",
    (400, b"malformed X-GitHub-Event or X-GitHub-Delivery\n"): "malformed_headers",
    (400, b"bad Content-Length\n"): "bad_length",
    (413, b"payload too large\n"): "too_large",
    (503, b"queue unavailable, retry later\n"): "queue_unavailable",
}


class LiveMetrics:
    """The process's own counters (one per process; a separate worker serves its own, see `start_http_server`)."""

    def __init__(self) -> None:
        disable_created_metrics()  # `_created` twins of every counter only double the scrape
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.deliveries = Counter(
            "diffwise_deliveries", "Webhook deliveries answered by the receiver, by result", ["result"], registry=r
        )
        self.jobs = Counter(
            "diffwise_jobs_processed",
            "Jobs run by this process, by event and outcome",
            ["event", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "diffwise_job_duration_seconds",
            "Time spent per job stage (job = the whole delivery; parse/analyze/llm+tests = review pipeline stages)",
            ["stage"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.github_calls = Counter(
            "diffwise_github_api_calls",
            "GitHub REST/GraphQL responses, by installation ('app' = App JWT) and status class",
            ["installation", "status"],
            registry=r,
        )
        self.rate_remaining = Gauge(
            "diffwise_github_rate_limit_remaining",
            "X-RateLimit-Remaining on the latest GitHub response, per installation",
            ["installation"],
            registry=r,
        )
        self.rate_reset = Gauge(
            "diffwise_github_rate_limit_reset_timestamp_seconds",
            "X-RateLimit-Reset (Unix time) on the latest GitHub response, per installation",
            ["installation"],
            registry=r,
        )
        self.findings = Counter(
            "diffwise_findings", "Findings reported by reviews, by severity and rule", ["severity", "rule"], registry=r
        )
        self.redeliveries = Counter(
            "diffwise_redeliveries",
            "Failed webhook deliveries asked to be redelivered, by result",
            ["result"],
            registry=r,
        )
        for reason in _DELIVERY_REASONS.values():
            self.deliveries.labels(reason)


_live: LiveMetrics | None = None
_live_lock = threading.Lock()


def live() -> LiveMetrics:
    """The process's LiveMetrics, created on first use."""
    global _live
    with _live_lock:
        if _live is None:
            _live = LiveMetrics()
        return _live


# ---- hooks for other modules (each one line at the call site) -------------------------------------


def delivery_reason(status: int, text: bytes) -> str:
    return _DELIVERY_REASONS.get((status, text), f"status_{status}")


def count_delivery(status: int, text: bytes = b"") -> None:
    """app.webhooks: count one receiver answer (accepted, duplicate, invalid_signature, ...)."""
    live().deliveries.labels(delivery_reason(status, text)).inc()


@contextlib.contextmanager
def time_job(event: str) -> Iterator[None]:
    """app.jobs: time one job (stage="job") and count it by event and outcome (ok | error)."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        m = live()
        m.duration.labels("job").observe(time.perf_counter() - started)
        m.jobs.labels(event, outcome).inc()


def record_github_response(installation: int | str | None, response: httpx.Response) -> None:
    """app.github's response hook: count the call and keep the installation's remaining rate limit."""
    m = live()
    who = str(installation) if installation is not None else "app"
    m.github_calls.labels(who, f"{response.status_code // 100}xx").inc()
    remaining = response.headers.get("x-ratelimit-remaining")
    if remaining is not None and remaining.isdigit():
        m.rate_remaining.labels(who).set(int(remaining))
    reset = response.headers.get("x-ratelimit-reset")
    if reset is not None and reset.isdigit():
        m.rate_reset.labels(who).set(int(reset))


def github_event_hooks(installation: int | str | None) -> tuple[Any, Any]:
    """(sync hook, async hook) for httpx `event_hooks["response"]` of a client acting for `installation`."""

    def on_response(response: httpx.Response) -> None:
        record_github_response(installation, response)

    async def aon_response(response: httpx.Response) -> None:
        record_github_response(installation, response)

    return on_response, aon_response


def observe_review(review: Any) -> None:
    """The review handler, after app.pipeline.run_review: findings by severity and rule, stage durations."""
    m = live()
    for finding in getattr(review, "findings", ()):
        severity = getattr(finding.severity, "name", str(finding.severity)).lower()
        m.findings.labels(severity, str(finding.rule)).inc()
    for stage, seconds in getattr(review, "timings", ()):
        m.duration.labels(str(stage)).observe(float(seconds))


def count_redelivery(result: str) -> None:
    """app.recovery: one redelivery request (requested | failed)."""
    live().redeliveries.labels(result).inc()


# ---- scrape-time collectors over the stores -------------------------------------------------------


class StoreCollector(Collector):
    """Reads the state store (reviews, LLM audit, dead letters) and the queue when Prometheus scrapes.

    These are shared by every process, so one scrape of any web process sees the whole deployment.
    """

    def __init__(self, settings: Settings, queue: Any = None) -> None:
        self.settings = settings
        self.queue = queue
        self._engine: Any = None

    def describe(self) -> Iterable[Any]:
        return []

    def engine(self) -> Any:
        if self._engine is None:
            from app.db import database_url, get_engine

            self._engine = get_engine(database_url(self.settings.state_dir, self.settings.database_url))
        return self._engine

    def collect(self) -> Iterator[Any]:
        parts = (
            self._queue_metrics,
            self._review_metrics,
            self._llm_metrics,
            self._dead_letter_metrics,
            self._outcome_metrics,
        )
        for part in parts:
            try:
                yield from part()
            except Exception as exc:  # a scrape must never fail because one store is unavailable
                log.warning("metrics: %s failed: %s", part.__name__, exc.__class__.__name__)

    def _outcome_metrics(self) -> Iterator[Any]:
        from app.stats import outcome_metrics

        yield from outcome_metrics(self.engine())

    def _queue_metrics(self) -> Iterator[Any]:
        queue = self.queue
        if queue is None:
            return
        depth = GaugeMetricFamily("diffwise_queue_depth", "Jobs waiting in the queue (ready plus scheduled retries)")
        depth.add_metric([], float(queue.pending()))
        yield depth
        age = GaugeMetricFamily(
            "diffwise_queue_oldest_age_seconds", "Age of the oldest delivery waiting to run (0 when none waits)"
        )
        oldest = _oldest_waiting(queue)
        age.add_metric([], max(0.0, time.time() - oldest) if oldest is not None else 0.0)
        yield age
        states = _ledger_states(queue)
        if states:
            family = GaugeMetricFamily(
                "diffwise_ledger_deliveries", "Deliveries in the job ledger by state (kept 14 days)", labels=["state"]
            )
            for state, count in sorted(states.items()):
                family.add_metric([state], float(count))
            yield family

    def _review_metrics(self) -> Iterator[Any]:
        from sqlalchemy import func, select

        from app.review_state import ReviewState, reviews

        ReviewState(self.engine())  # creates the table on a fresh store
        c = reviews.c
        with self.engine().connect() as conn:
            by_status = conn.execute(select(c.status, func.count()).group_by(c.status)).all()
            sums = conn.execute(
                select(
                    func.coalesce(func.sum(c.inline), 0),
                    func.coalesce(func.sum(c.in_summary), 0),
                    func.coalesce(func.sum(c.rejected), 0),
                    func.coalesce(func.sum(c.findings), 0),
                    func.coalesce(func.sum(c.api_calls), 0),
                )
            ).one()
        total = CounterMetricFamily(
            "diffwise_reviews", "Reviews recorded in the state store, by status", labels=["status"]
        )
        for status, count in by_status:
            total.add_metric([str(status).split(":", 1)[0]], float(count))
        yield total
        comments = CounterMetricFamily(
            "diffwise_comments",
            "Review comments: posted inline, moved to the summary (outside the diff, over the cap), rejected by GitHub",
            labels=["outcome"],
        )
        for outcome, value in zip(("posted", "moved", "rejected"), sums[:3], strict=True):
            comments.add_metric([outcome], float(value))
        yield comments
        reported = CounterMetricFamily("diffwise_review_findings", "Findings counted in recorded reviews")
        reported.add_metric([], float(sums[3]))
        yield reported
        calls = CounterMetricFamily("diffwise_review_github_api_calls", "GitHub API calls made by recorded reviews")
        calls.add_metric([], float(sums[4]))
        yield calls

    def _llm_metrics(self) -> Iterator[Any]:
        from sqlalchemy import func, select

        from app.audit import AuditLog, llm_calls

        AuditLog(self.engine())
        c = llm_calls.c
        query = select(
            c.model,
            c.outcome,
            func.count(),
            func.sum(c.input_tokens),
            func.sum(c.output_tokens),
            func.sum(c.cache_read_tokens),
            func.sum(c.cache_write_tokens),
            func.sum(c.cost_usd),
        ).group_by(c.model, c.outcome)
        with self.engine().connect() as conn:
            rows = conn.execute(query).all()
        calls = CounterMetricFamily("diffwise_llm_calls", "LLM calls by model and outcome", labels=["model", "outcome"])
        tokens = CounterMetricFamily("diffwise_llm_tokens", "LLM tokens by model and type", labels=["model", "type"])
        cost = CounterMetricFamily("diffwise_llm_cost_usd", "LLM cost in US dollars by model", labels=["model"])
        token_sums: dict[tuple[str, str], float] = {}
        cost_sums: dict[str, float] = {}
        for model, outcome, count, inp, out, cread, cwrite, usd in rows:
            calls.add_metric([model, outcome], float(count))
            for kind, value in (("input", inp), ("output", out), ("cache_read", cread), ("cache_write", cwrite)):
                token_sums[(model, kind)] = token_sums.get((model, kind), 0.0) + float(value or 0)
            cost_sums[model] = cost_sums.get(model, 0.0) + float(usd or 0.0)
        for (model, kind), value in sorted(token_sums.items()):
            tokens.add_metric([model, kind], value)
        for model, value in sorted(cost_sums.items()):
            cost.add_metric([model], value)
        yield from (calls, tokens, cost)

    def _dead_letter_metrics(self) -> Iterator[Any]:
        from sqlalchemy import func, select

        from app.deliveries import DeadLetters, dead_letter

        DeadLetters(self.engine())
        with self.engine().connect() as conn:
            count = conn.execute(select(func.count()).select_from(dead_letter)).scalar_one()
        family = GaugeMetricFamily(
            "diffwise_dead_letters", "Jobs that gave up after their retries (see the dead_letter table)"
        )
        family.add_metric([], float(count))
        yield family


def _oldest_waiting(queue: Any) -> float | None:
    """received_at of the oldest delivery waiting in the queue (the ledger on SQLite, the list tail on Redis)."""
    storage = queue.huey.storage
    if queue.settings.redis_url:
        data = storage.conn.lindex(storage.queue_key, -1)  # RedisHuey pushes left and pops right
        if data is None:
            return None
        task = queue.huey.deserialize_task(data)
        delivery = task.args[0] if task.args else None
        return float(getattr(delivery, "received_at", time.time()))
    rows = storage.sql("select min(received_at) from delivery where state = 'queued'", results=True)
    return float(rows[0][0]) if rows and rows[0][0] is not None else None


def _ledger_states(queue: Any) -> dict[str, int]:
    storage = queue.huey.storage
    if queue.settings.redis_url:
        running = getattr(queue.ledger, "_running", None)
        return {"running_or_retrying": int(storage.conn.zcard(running))} if running else {}
    rows = storage.sql("select state, count(*) from delivery group by state", results=True)
    return {str(state): int(count) for state, count in rows}


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self._registry.collect()


def exposition(settings: Settings, queue: Any = None) -> bytes:
    """The Prometheus text for this process: live counters plus the stores' view."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Delegate(live().registry))
    registry.register(StoreCollector(settings, queue))
    return bytes(generate_latest(registry))


def routes(settings: Settings) -> list[BaseRoute]:
    """web_routes provider: GET /metrics."""

    async def metrics(request: Request) -> Response:
        import asyncio

        state = getattr(request.app.state, "diffwise", {}) or {}
        body = await asyncio.to_thread(exposition, settings, state.get("queue"))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route(METRICS_PATH, metrics, methods=["GET"])]


def start_http_server(settings: Settings, port: int, queue: Any = None, addr: str = "0.0.0.0") -> Any:
    """For `diffwise worker`: serve this process's metrics on their own port (its live counters live here)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body = exposition(settings, queue)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = make_server(addr, port, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="diffwise-metrics", daemon=True)
    thread.start()
    return server
